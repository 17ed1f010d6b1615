import AsyncHTTPClient
import Foundation
import NIOCore
import Testing
import TestSupport

@testable import ObjectStore

/// The standard AWS places, in order, from an environment the test writes; each found
/// key then proves itself against moto.
@Suite(.timeLimit(.minutes(3)))
struct CredentialChainTests {
    @Test("the environment's key pair comes first, with its session token")
    func environmentFirst() async throws {
        let folder = try TemporaryFolder()
        try folder.write(".aws/credentials", "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = file\n")
        let chain = CredentialChain(
            environment: ["AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "env", "AWS_SESSION_TOKEN": "token", "HOME": folder.path],
            httpClient: nil)
        let credentials = try await chain.credentials()
        #expect(credentials == Credentials(accessKeyId: "AKIAENV", secretAccessKey: "env", sessionToken: "token", source: "the environment (AWS_ACCESS_KEY_ID)"))
    }

    @Test("half a key pair in the environment is an error naming the missing variable")
    func incompleteEnvironment() async throws {
        await #expect(throws: ObjectStoreError.incompleteCredentials("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both, or neither to use another source.")) {
            try await CredentialChain(environment: ["AWS_ACCESS_KEY_ID": "AKIA"], httpClient: nil).credentials()
        }
    }

    @Test("the profile file: AWS_SHARED_CREDENTIALS_FILE and AWS_PROFILE, the key working against moto; region from ~/.aws/config")
    func profileFile() async throws {
        let folder = try TemporaryFolder()
        try folder.write(".aws/config", "[default]\nregion = eu-west-1\n\n[profile ci]\nregion = ap-south-1\n")
        let moto = try await MotoServer.shared("profileFile")
        let (id, secret) = (moto?.admin.accessKeyId ?? "AKIAPROFILE", moto?.admin.secretAccessKey ?? "profile-secret")
        try folder.write("elsewhere/creds", """
            # comments and other profiles are skipped
            [default]
            aws_access_key_id = AKIANOTTHISONE
            aws_secret_access_key = no

            [ci]
            aws_access_key_id = \(id)
            ; a comment inside
            aws_secret_access_key=\(secret)
            """)
        let environment = ["HOME": folder.path, "AWS_SHARED_CREDENTIALS_FILE": folder.path + "/elsewhere/creds", "AWS_PROFILE": "ci"]
        let credentials = try await CredentialChain(environment: environment, httpClient: nil).credentials()
        #expect(credentials.accessKeyId == id)
        #expect(credentials.secretAccessKey == secret)
        #expect(credentials.source == "profile 'ci' in \(folder.path)/elsewhere/creds")
        #expect(defaultRegion(environment: environment) == "ap-south-1")
        #expect(defaultRegion(environment: ["HOME": folder.path]) == "eu-west-1")
        #expect(defaultRegion(environment: ["HOME": folder.path, "AWS_DEFAULT_REGION": "us-west-2"]) == "us-west-2")
        #expect(defaultRegion(environment: ["HOME": folder.path, "AWS_DEFAULT_REGION": "us-west-2", "AWS_REGION": "ca-central-1"]) == "ca-central-1")
        let configured = try S3Configuration(region: nil, endpoint: nil, pathStyle: false, environment: environment)
        #expect(configured.region == "ap-south-1")

        guard let moto else { return }
        let client = try S3Client(
            configuration: S3Configuration(region: "us-east-1", endpoint: moto.endpoint, pathStyle: true),
            credentials: CredentialChain(environment: environment, httpClient: nil), httpClient: .shared)
        let bucket = try await moto.bucket(client)
        #expect(try await client.listObjectsPage(bucket: bucket, prefix: "").objects.isEmpty)
    }

    @Test("~/.aws/credentials under HOME, profile default")
    func homeCredentials() async throws {
        let folder = try TemporaryFolder()
        try folder.write(".aws/credentials", "[default]\naws_access_key_id = AKIAHOME\naws_secret_access_key = home\naws_session_token = tok\n")
        let credentials = try await CredentialChain(environment: ["HOME": folder.path], httpClient: nil).credentials()
        #expect(credentials == Credentials(accessKeyId: "AKIAHOME", secretAccessKey: "home", sessionToken: "tok", source: "profile 'default' in \(folder.path)/.aws/credentials"))
    }

    @Test("no credentials anywhere: the error names every place looked at")
    func noCredentials() async throws {
        let folder = try TemporaryFolder()
        try folder.write(".aws/config", "[profile other]\nregion = eu-west-1\n")
        let error = await #expect(throws: ObjectStoreError.self) {
            try await CredentialChain(environment: ["HOME": folder.path, "AWS_PROFILE": "ci"], httpClient: nil).credentials()
        }
        #expect(error?.description == """
            No AWS credentials found. Looked at: the environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (not set); \
            a web identity (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, not set); \(folder.path)/.aws/credentials (not readable); \
            \(folder.path)/.aws/config (no profile 'ci'). Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a web identity, or a profile in the shared credentials file.
            """)
    }

    @Test("a web identity token is exchanged through STS (moto's) for a session, which the client then uses")
    func webIdentity() async throws {
        guard let moto = try await MotoServer.shared("webIdentity", checkingSignatures: false) else { return }
        let folder = try TemporaryFolder()
        try folder.write("token", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmV4YW1wbGUifQ.c2lnbmF0dXJl\n")
        let role = "arn:aws:iam::123456789012:role/segsync-ci"
        let environment = [
            "AWS_ROLE_ARN": role, "AWS_WEB_IDENTITY_TOKEN_FILE": folder.path + "/token", "AWS_ROLE_SESSION_NAME": "run-42",
            "AWS_ENDPOINT_URL_STS": moto.endpoint, "HOME": folder.path,
        ]
        let chain = CredentialChain(environment: environment, httpClient: .shared)
        let credentials = try await chain.credentials()
        #expect(credentials.accessKeyId.hasPrefix("ASIA"))
        #expect(credentials.sessionToken?.isEmpty == false)
        #expect(credentials.expiration.map { $0 > Date() } == true)
        #expect(credentials.source == "web identity role \(role) (AWS_ROLE_ARN)")
        #expect(try await chain.credentials() == credentials, "kept until close to expiry")

        let client = try S3Client(
            configuration: S3Configuration(region: "us-east-1", endpoint: moto.endpoint, pathStyle: true), credentials: chain, httpClient: .shared)
        let bucket = try await moto.bucket(client)
        try await client.putObject(bucket: bucket, key: "k", body: ByteBuffer(string: "v"))
        #expect(try await client.headObject(bucket: bucket, key: "k")?.size == 1)

        await #expect(throws: ObjectStoreError.webIdentity("the token file \(folder.path)/missing (AWS_WEB_IDENTITY_TOKEN_FILE) cannot be read or is empty.")) {
            var broken = environment
            broken["AWS_WEB_IDENTITY_TOKEN_FILE"] = folder.path + "/missing"
            return try await CredentialChain(environment: broken, httpClient: .shared).credentials()
        }
    }

    @Test("plain http is refused for an endpoint that is not loopback; buckets are addressed virtual-hosted or path-style")
    func endpointsAndAddressing() throws {
        let chain = CredentialChain(fixed: Credentials(accessKeyId: "A", secretAccessKey: "S", source: "test"))
        #expect(throws: ObjectStoreError.self) {
            try S3Client(configuration: S3Configuration(region: "us-east-1", endpoint: "http://minio.internal:9000"), credentials: chain, httpClient: .shared)
        }
        for loopback in ["http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000"] {
            _ = try S3Client(configuration: S3Configuration(region: "us-east-1", endpoint: loopback, pathStyle: true), credentials: chain, httpClient: .shared)
        }
        let aws = try S3Client(configuration: S3Configuration(region: "eu-west-1"), credentials: chain, httpClient: .shared)
        let (host, path) = aws.address(bucket: "analytics-raw", key: "fullstory/a b.csv")
        #expect(host.url(path: "/x") == "https://analytics-raw.s3.eu-west-1.amazonaws.com/x")
        #expect(path == "/fullstory/a b.csv")
        let dotted = aws.address(bucket: "analytics.raw", key: "k")
        #expect(dotted.0.hostHeader == "s3.eu-west-1.amazonaws.com")
        #expect(dotted.path == "/analytics.raw/k")
        let minio = try S3Client(configuration: S3Configuration(region: "us-east-1", endpoint: "https://minio.example.com:9000", pathStyle: true), credentials: chain, httpClient: .shared)
        let pathStyle = minio.address(bucket: "bucket", key: "k")
        #expect(pathStyle.0.hostHeader == "minio.example.com:9000")
        #expect(pathStyle.path == "/bucket/k")
    }
}
