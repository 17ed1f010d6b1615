import Foundation
import Hummingbird
import NIOCore

/// The emulator's HTTP surface on Hummingbird's router:
///
/// - ``RequestLogMiddleware`` on every request, matched or not: one line in the request
///   log, an injected reset, and the API's own 404 for paths it does not serve.
/// - The API routes, behind ``AuthMiddleware`` (401 without the key) and
///   ``FaultMiddleware`` (injected 429, 5xx and resets).
/// - Downloads: signed links need no key, and inject their faults in the body.
enum EmulatorRouter {
    /// One endpoint: how it is reached, what the request log calls it, who answers.
    struct Endpoint: Sendable {
        var method: HTTPRequest.Method
        var path: String
        var kind: String
        var handler: @Sendable (EmulatorAPI, Request, EmulatorContext) async -> Response
    }

    /// Every endpoint the emulator serves, but downloads.
    static let api: [Endpoint] = [
        Endpoint(method: .get, path: "/segments/v1", kind: "listSegments") { $0.listSegments($1, $2) },
        Endpoint(method: .get, path: "/segments/v1/:id", kind: "getSegment") { $0.getSegment($1, $2) },
        Endpoint(method: .post, path: "/segments/v1/exports", kind: "createExport") { await $0.createExport($1, $2) },
        Endpoint(method: .get, path: "/operations/v1", kind: "listOperations") { await $0.listOperations($1, $2) },
        Endpoint(method: .get, path: "/operations/v1/:id", kind: "getOperation") { await $0.getOperation($1, $2) },
        Endpoint(method: .get, path: "/search/v1/exports/:id/results", kind: "exportResults") { await $0.exportResults($1, $2) },
    ]

    static let download = Endpoint(method: .get, path: "/downloads/:token", kind: "download") { await $0.download($1, $2) }

    /// Endpoint kinds by method and the matched path as the router spells it.
    private static let kinds: [String: String] = Dictionary(uniqueKeysWithValues: (api + [download]).map {
        ("\($0.method) \(RouterPath($0.path).description)", $0.kind)
    })

    /// The request log's name for the endpoint the router matched; "unknown" for none.
    static func kind(_ method: HTTPRequest.Method, endpointPath: String?) -> String {
        endpointPath.flatMap { kinds["\(method) \($0)"] } ?? "unknown"
    }

    static func router(_ state: EmulatorState) -> Router<EmulatorContext> {
        let handlers = EmulatorAPI(state: state)
        let router = Router(context: EmulatorContext.self)
        router.add(middleware: RequestLogMiddleware(state: state))
        let guarded = router.group().add(middleware: AuthMiddleware(state: state)).add(middleware: FaultMiddleware(state: state))
        for endpoint in api {
            guarded.on(RouterPath(endpoint.path), method: endpoint.method) { request, context in
                await endpoint.handler(handlers, request, context)
            }
        }
        router.on(RouterPath(download.path), method: download.method) { request, context in
            await download.handler(handlers, request, context)
        }
        return router
    }
}

/// Logs every request with its status and what was injected, turns an injected reset
/// into a closed connection, and answers unknown paths with the API's JSON 404.
struct RequestLogMiddleware: RouterMiddleware {
    typealias Context = EmulatorContext
    let state: EmulatorState

    func handle(_ request: Request, context: EmulatorContext, next: (Request, EmulatorContext) async throws -> Response) async throws -> Response {
        let kind = EmulatorRouter.kind(request.method, endpointPath: context.endpointPath)
        let response: Response
        do {
            response = try await next(request, context)
        } catch is InjectedDisconnect {
            // A create reset after it was made names the export whose id the client lost.
            await state.record(request, kind: kind, status: 0, fault: "reset", operation: context.exchange.operation)
            // Closed before any answer: the response below can never be written.
            try? await context.channel.close()
            return Response(status: .internalServerError)
        } catch let error as HTTPError where error.status == .notFound {
            let answer = EmulatorAPI(state: state).error(404, "There is no such endpoint: \(request.method) \(request.uri.path).")
            await state.record(request, kind: kind, status: 404, fault: nil)
            return answer
        }
        await state.record(request, kind: kind, status: Int(response.status.code), fault: context.exchange.fault,
                           range: context.exchange.range, operation: context.exchange.operation)
        return response
    }
}

/// 401 unless the request carries the API key: `Authorization: Basic <key>`, or classic
/// Basic auth of the key from generic tools.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = EmulatorContext
    let state: EmulatorState

    func handle(_ request: Request, context: EmulatorContext, next: (Request, EmulatorContext) async throws -> Response) async throws -> Response {
        // A rotated key: the right key is refused for a stretch of calls.
        let rotated = await state.faults.rejectsKeyOfNextCall()
        if rotated { context.exchange.fault = "rejected-key" }
        guard !rotated, Self.isAuthorized(request, key: state.configuration.apiKey) else {
            return EmulatorAPI(state: state).error(
                401, "Missing or invalid API key; send 'Authorization: Basic <API key>' with an Admin or Architect key.")
        }
        return try await next(request, context)
    }

    static func isAuthorized(_ request: Request, key: String) -> Bool {
        guard let header = request.headers[.authorization] else { return false }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic" else { return false }
        let credential = String(parts[1]).trimmingCharacters(in: .whitespaces)
        if credential == key { return true }
        if let data = Data(base64Encoded: credential), let decoded = String(data: data, encoding: .utf8) {
            return decoded == key || decoded == key + ":" || decoded == ":" + key
        }
        return false
    }
}

/// The faults an API call can meet before it is answered: 429 with `Retry-After`, a 5xx,
/// or a connection reset after the request was read (its answer lost).
struct FaultMiddleware: RouterMiddleware {
    typealias Context = EmulatorContext
    let state: EmulatorState

    func handle(_ request: Request, context: EmulatorContext, next: (Request, EmulatorContext) async throws -> Response) async throws -> Response {
        let configuration = state.configuration
        if let faultsOn = configuration.faultsOn, !faultsOn.contains(EmulatorRouter.kind(request.method, endpointPath: context.endpointPath)) {
            return try await next(request, context)
        }
        let retryAfter = configuration.retryAfterValue ?? String(configuration.retryAfterSeconds)
        let api = EmulatorAPI(state: state)
        if await state.faults.fires(.tooManyRequests) {
            var response = api.error(429, "Too many requests; retry after \(retryAfter).")
            response.headers[.retryAfter] = retryAfter
            context.exchange.fault = "429"
            return response
        }
        if await state.faults.fires(.serverError) {
            let status = configuration.serverErrorStatus
            var response = api.error(status, "The emulator failed this request on purpose (injected \(status)).")
            if status == 503 { response.headers[.retryAfter] = retryAfter }
            context.exchange.fault = "5xx"
            return response
        }
        if await state.faults.fires(.reset) {
            // The request is read to its end; a create is made (the export exists, and
            // the operations list shows it), then the connection closes: its answer is lost.
            if request.method == .post, request.uri.path.hasSuffix("/exports") {
                _ = try await next(request, context)
            } else {
                var request = request
                _ = try? await request.collectBody(upTo: 1 << 20)
            }
            throw InjectedDisconnect()
        }
        return try await next(request, context)
    }
}
