import Foundation
import Hummingbird
import Logging
import NIOCore

/// Routes and answers every request: the API in the configured dialect, and downloads.
struct EmulatorResponder: HTTPResponder {
    typealias Context = EmulatorContext
    let state: EmulatorState

    var configuration: EmulatorConfiguration { state.configuration }
    private var dialect: EmulatorConfiguration.Dialect { configuration.dialect }

    enum Route {
        case listSegments
        case getSegment(String)
        case createExport
        case getOperation(String)
        case exportResults(String)
        case download(String)
        case unknown

        var kind: String {
            switch self {
            case .listSegments: return "listSegments"
            case .getSegment: return "getSegment"
            case .createExport: return "createExport"
            case .getOperation: return "getOperation"
            case .exportResults: return "exportResults"
            case .download: return "download"
            case .unknown: return "unknown"
            }
        }
    }

    /// An answer plus what the request log should say about it.
    struct Outcome {
        var response: Response
        var fault: String?
        var range: String?
    }

    func respond(to request: Request, context: EmulatorContext) async throws -> Response {
        let rawPath = request.uri.path
        let components = rawPath.split(separator: "/", omittingEmptySubsequences: true).map {
            String($0).removingPercentEncoding ?? String($0)
        }
        let route = Self.route(request.method, components)
        let authorized = isAuthorized(request)
        var outcome: Outcome
        do {
            outcome = try await answer(route, request: request, authorized: authorized)
        } catch is InjectedDisconnect {
            await record(request, path: rawPath, route: route, status: 0, fault: "reset")
            // Closed before any answer: the response below can never be written.
            try? await context.channel.close()
            return Response(status: .internalServerError)
        }
        await record(
            request, path: rawPath, route: route, status: Int(outcome.response.status.code), fault: outcome.fault,
            range: outcome.range
        )
        return outcome.response
    }

    static func route(_ method: HTTPRequest.Method, _ path: [String]) -> Route {
        switch (method, path.count) {
        case (.get, 2) where path == ["segments", "v1"]:
            return .listSegments
        case (.post, 3) where path == ["segments", "v1", "exports"]:
            return .createExport
        case (.get, 3) where path[0] == "segments" && path[1] == "v1":
            return .getSegment(path[2])
        case (.get, 3) where path[0] == "operations" && path[1] == "v1":
            return .getOperation(path[2])
        case (.get, 5) where path[0] == "search" && path[1] == "v1" && path[2] == "exports" && path[4] == "results":
            return .exportResults(path[3])
        case (.get, 2) where path[0] == "downloads":
            return .download(path[1])
        default:
            return .unknown
        }
    }

    /// The `Retry-After` value faults send.
    private var retryAfter: String {
        configuration.retryAfterValue ?? String(configuration.retryAfterSeconds)
    }

    private func answer(_ route: Route, request: Request, authorized: Bool) async throws -> Outcome {
        if case .download(let token) = route {
            return try await download(token: token, request: request)
        }
        if case .unknown = route {
            return Outcome(response: error(404, "There is no such endpoint: \(request.method) \(request.uri.path)."))
        }
        guard authorized else {
            return Outcome(
                response: error(
                    401,
                    "Missing or invalid API key; send 'Authorization: Basic <API key>' with an Admin or Architect key.")
            )
        }
        if await state.faults.fires(.tooManyRequests) {
            var response = error(429, "Too many requests; retry after \(retryAfter).")
            response.headers[.retryAfter] = retryAfter
            return Outcome(response: response, fault: "429")
        }
        if await state.faults.fires(.serverError) {
            let status = configuration.serverErrorStatus
            var response = error(status, "The emulator failed this request on purpose (injected \(status)).")
            if status == 503 { response.headers[.retryAfter] = retryAfter }
            return Outcome(response: response, fault: "5xx")
        }
        var body = ByteBuffer()
        if case .createExport = route {
            do {
                body = try await request.body.collect(upTo: 1 << 20)
            } catch {
                return Outcome(response: self.error(400, "The request body is larger than 1 MiB."))
            }
        }
        if await state.faults.fires(.reset) {
            // The request was read (a create would have been accepted); the answer is lost.
            throw InjectedDisconnect()
        }
        switch route {
        case .listSegments: return Outcome(response: listSegments(request))
        case .getSegment(let id): return Outcome(response: getSegment(id))
        case .createExport: return await createExport(Data(body.readableBytesView), request: request)
        case .getOperation(let id): return Outcome(response: await getOperation(id, request: request))
        case .exportResults(let id): return Outcome(response: await exportResults(id, request: request))
        case .download, .unknown: return Outcome(response: error(404, "There is no such endpoint."))
        }
    }

    // MARK: - Segments

    private func listSegments(_ request: Request) -> Response {
        let query = request.uri.queryParameters
        var limit = 20
        if let raw = query["limit"] {
            guard let parsed = Int(raw), (1...100).contains(parsed) else {
                return error(400, "limit must be an integer from 1 to 100; got '\(raw.prefix(20))'.")
            }
            limit = parsed
        }
        var offset = 0
        if let token = query["pagination_token"].map(String.init), !token.isEmpty {
            guard let decoded = SegmentCatalog.offset(token: token) else {
                // An unknown token is answered with an empty last page rather than an
                // error: the contract lists no 400 for this call.
                return json(200, ["segments": [Any]()])
            }
            offset = decoded
        }
        let page = state.catalog.page(offset: offset, limit: limit)
        var object: [String: Any] = ["segments": page.entries.map(segmentJSON)]
        if let next = page.next {
            object[dialect == .seed ? "pagination_token" : "nextPaginationToken"] = SegmentCatalog.token(offset: next)
        }
        return json(200, object)
    }

    private func getSegment(_ id: String) -> Response {
        guard let entry = state.catalog.segment(id) else {
            return error(404, "Segment '\(id.prefix(80))' was not found.")
        }
        return json(200, segmentJSON(entry))
    }

    private func segmentJSON(_ entry: SegmentCatalog.Entry) -> [String: Any] {
        var object: [String: Any] = ["id": entry.id, "name": entry.name]
        if let creator = entry.creator { object["creator"] = creator }
        if let created = entry.created { object["created"] = WireTime.format(milliseconds: created) }
        if dialect == .fullstory {
            object["url"] = "https://app.fullstory.com/ui/emulator/segments/\(entry.id)/people/0"
        }
        return object
    }

    // MARK: - Exports and operations

    private func createExport(_ body: Data, request: Request) async -> Outcome {
        let spec: ExportSpec
        do {
            spec = try ExportSpec(body: body, dialect: dialect)
        } catch {
            return Outcome(response: self.error(error.status, error.message))
        }
        guard state.catalog.segment(spec.segmentID) != nil else {
            // The contract lists no 404 for this call, so the seed dialect says 400;
            // production answers 404.
            return Outcome(response: error(dialect == .seed ? 400 : 404, "Segment '\(spec.segmentID.prefix(80))' was not found."))
        }
        let ticket = OperationTicket(
            spec: spec,
            created: Self.nowMilliseconds(),
            durationMilliseconds: Int64((configuration.operationSeconds * 1000).rounded()),
            fails: await state.faults.fires(.fail),
            nonce: UInt64.random(in: 0...UInt64.max)
        )
        let id = state.signer.seal(ticket)
        if configuration.createLatency > 0 {
            // The export exists from here on; only its answer is late. Logged now (status
            // 0, "answer-delayed"), so a test can act while the answer is outstanding.
            await record(request, path: request.uri.path, route: .createExport, status: 0, fault: "answer-delayed")
            try? await Task.sleep(for: .milliseconds(Int64((configuration.createLatency * 1000).rounded())))
        }
        // The log says which exports will end FAILED, so tests can count re-exports.
        let fault = ticket.fails ? "fail" : nil
        switch dialect {
        case .seed: return Outcome(response: json(200, await operationJSON(id: id, ticket: ticket, request: request)), fault: fault)
        case .fullstory: return Outcome(response: json(200, ["operationId": id]), fault: fault)
        }
    }

    private func getOperation(_ id: String, request: Request) async -> Response {
        guard let ticket = state.signer.open(id, as: OperationTicket.self) else {
            return error(404, "Operation '\(id.prefix(80))' was not found.")
        }
        return json(200, await operationJSON(id: id, ticket: ticket, request: request))
    }

    /// The operation as of now: PENDING, then RUNNING (seed only) from a fifth of the way,
    /// then COMPLETED or FAILED once its duration has passed.
    private func operationJSON(id: String, ticket: OperationTicket, request: Request) async -> [String: Any] {
        let now = Self.nowMilliseconds()
        let elapsed = max(0, now - ticket.created)
        let duration = ticket.durationMilliseconds
        var object: [String: Any] = [
            "id": id,
            "type": dialect == .seed ? "SEGMENT_EXPORT" : "SEARCH_EXPORT",
            "createdAt": WireTime.format(milliseconds: ticket.created),
        ]
        guard elapsed >= duration else {
            let fraction = Double(elapsed) / Double(max(duration, 1))
            let percent = min(99, fraction * 100)
            switch dialect {
            case .seed:
                object["state"] = fraction < 0.2 ? "PENDING" : "RUNNING"
                object["estimatePctComplete"] = (percent * 10).rounded() / 10
            case .fullstory:
                object["state"] = "PENDING"
                object["estimatePctComplete"] = Int(percent)
            }
            return object
        }
        let finished = ticket.created + duration
        object["finishedAt"] = WireTime.format(milliseconds: finished)
        if ticket.fails {
            object["state"] = "FAILED"
            object["errorDetails"] = "The export failed on the server (injected failure)."
            return object
        }
        object["state"] = "COMPLETED"
        switch dialect {
        case .seed:
            object["estimatePctComplete"] = 100.0
            object["results"] = ["downloadUrl": await downloadLink(for: ticket.spec, request: request).url]
        case .fullstory:
            object["estimatePctComplete"] = 100
            object["results"] = [
                "searchExportId": state.signer.seal(SearchExportTicket(spec: ticket.spec, finished: finished)),
                // How long the export itself is kept; its links are much shorter-lived.
                "expires": WireTime.format(milliseconds: finished + 7 * 86_400_000),
            ]
        }
        return object
    }

    private func exportResults(_ id: String, request: Request) async -> Response {
        guard dialect == .fullstory else {
            return error(404, "There is no such endpoint in the seed dialect.")
        }
        guard let ticket = state.signer.open(id, as: SearchExportTicket.self) else {
            return error(404, "Search export '\(id.prefix(80))' was not found.")
        }
        let link = await downloadLink(for: ticket.spec, request: request)
        return json(200, ["location": link.url, "expires": WireTime.format(milliseconds: link.expires)])
    }

    /// A signed link served by this emulator, valid for `linkTTL` (or already expired
    /// when that fault fires).
    private func downloadLink(for spec: ExportSpec, request: Request) async -> (url: String, expires: Int64) {
        let token = state.signer.seal(spec)
        let expired = await state.faults.fires(.expiredLink)
        let expires =
            expired
            ? Self.nowMilliseconds() - 1000 : Self.nowMilliseconds() + Int64((configuration.linkTTL * 1000).rounded())
        let signature = state.signer.linkSignature(token: token, expires: expires)
        return ("\(linkBase(request))/downloads/\(token)?expires=\(expires)&sig=\(signature)", expires)
    }

    private func linkBase(_ request: Request) -> String {
        let hostHeader = request.head.authority.flatMap { header -> String? in
            if header.hasPrefix("[") { return header.split(separator: "]").first.map { $0 + "]" } }
            return header.split(separator: ":").first.map(String.init)
        }
        let host = configuration.downloadHost ?? hostHeader ?? configuration.host
        return "http://\(host):\(state.boundPort.current)"
    }

    // MARK: - Plumbing

    private func isAuthorized(_ request: Request) -> Bool {
        guard let header = request.headers[.authorization] else { return false }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic" else { return false }
        let credential = String(parts[1]).trimmingCharacters(in: .whitespaces)
        let key = configuration.apiKey
        if credential == key { return true }
        // Also accept classic Basic auth (base64 of "key:" or "key") from generic tools.
        if let data = Data(base64Encoded: credential), let decoded = String(data: data, encoding: .utf8) {
            return decoded == key || decoded == key + ":" || decoded == ":" + key
        }
        return false
    }

    private func record(
        _ request: Request, path: String, route: Route, status: Int, fault: String?, range: String? = nil
    ) async {
        await state.log.record(
            .init(
                time: WireTime.format(Date()), method: request.method.rawValue, path: path, status: status,
                kind: route.kind,
                fault: fault, range: range, auth: request.headers[.authorization] != nil
            )
        )
    }

    private func json(_ status: Int, _ object: [String: Any]) -> Response {
        let data =
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data("{}".utf8)
        return Response(
            status: .init(code: status),
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data))
        )
    }

    func error(_ status: Int, _ message: String) -> Response {
        json(status, ["code": status, "message": message])
    }

    static func nowMilliseconds() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }
}
