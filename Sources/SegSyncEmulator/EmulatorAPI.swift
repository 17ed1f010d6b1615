import Foundation
import Hummingbird
import Logging
import NIOCore

/// The API's answers, one handler per endpoint, in the configured dialect. Routing,
/// authentication, fault injection and the request log are the router's and its
/// middleware's (``EmulatorRouter``); what a handler adds to the log goes in the
/// request's ``Exchange``.
struct EmulatorAPI: Sendable {
    let state: EmulatorState

    var configuration: EmulatorConfiguration { state.configuration }
    private var dialect: EmulatorConfiguration.Dialect { configuration.dialect }

    /// A path parameter, percent-decoded.
    static func parameter(_ name: String, _ context: EmulatorContext) -> String {
        let raw = context.parameters.get(name) ?? ""
        return raw.removingPercentEncoding ?? raw
    }

    /// A list's `limit`: 1–100, 20 when not given; nil when it is anything else.
    static func pageLimit(_ raw: String?) -> Int? {
        guard let raw else { return 20 }
        guard let parsed = Int(raw), (1...100).contains(parsed) else { return nil }
        return parsed
    }

    // MARK: - Segments

    func listSegments(_ request: Request, _ context: EmulatorContext) -> Response {
        let query = request.uri.queryParameters
        guard let limit = Self.pageLimit(query["limit"].map(String.init)) else {
            return error(400, "limit must be an integer from 1 to 100; got '\(query["limit"].map { String($0.prefix(20)) } ?? "")'.")
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

    func getSegment(_ request: Request, _ context: EmulatorContext) -> Response {
        let id = Self.parameter("id", context)
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

    func createExport(_ request: Request, _ context: EmulatorContext) async -> Response {
        // Logged as it arrives (its answer is logged as `createExport`), so a test can wait
        // until every create the server received has been answered, read or not.
        await state.record(request, kind: "createReceived", status: 0, fault: nil)
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: 1 << 20)
        } catch {
            return self.error(400, "The request body is larger than 1 MiB.")
        }
        var spec: ExportSpec
        do {
            spec = try ExportSpec(body: Data(body.readableBytesView), dialect: dialect)
        } catch {
            return self.error(error.status, error.message)
        }
        let created = nowMilliseconds()
        // With late data, an export made before every row has arrived holds fewer rows.
        if configuration.lateRate > 0, created < spec.end + Int64((configuration.lateSeconds * 1000).rounded()) {
            spec.asOf = created
        }
        guard state.catalog.segment(spec.segmentID) != nil else {
            // The contract lists no 404 for this call, so the seed dialect says 400;
            // production answers 404.
            return error(dialect == .seed ? 400 : 404, "Segment '\(spec.segmentID.prefix(80))' was not found.")
        }
        let ticket = OperationTicket(
            spec: spec,
            created: created,
            durationMilliseconds: Int64((configuration.operationSeconds * 1000).rounded()),
            fails: await state.faults.fires(.fail),
            nonce: UInt64.random(in: 0...UInt64.max)
        )
        let id = state.signer.seal(ticket)
        await state.operations.register(id, ticket)
        if configuration.createLatency > 0, await state.faults.slowsNextCreate() {
            // The export exists from here on; only its answer is late. Logged now (status
            // 0, "answer-delayed"), so a test can act while the answer is outstanding.
            await state.record(request, kind: "createExport", status: 0, fault: "answer-delayed")
            try? await Task.sleep(for: .milliseconds(Int64((configuration.createLatency * 1000).rounded())))
        }
        // The log says which exports will end FAILED, so tests can count re-exports.
        if ticket.fails { context.exchange.fault = "fail" }
        context.exchange.operation = id
        if await state.faults.fires(.unreadableCreate) {
            // Made, but the answer stops half-way through its JSON: the id is lost.
            context.exchange.fault = "unreadable"
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: "{\"operationId\": \"\(id.prefix(8))")))
        }
        switch dialect {
        case .seed: return json(200, await operationJSON(id: id, ticket: ticket, request: request))
        case .fullstory: return json(200, ["operationId": id])
        }
    }

    func getOperation(_ request: Request, _ context: EmulatorContext) async -> Response {
        if await state.faults.answersPollWithHTML() {
            context.exchange.fault = "html"
            return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: Self.proxyPage)))
        }
        let id = Self.parameter("id", context)
        guard let ticket = state.signer.open(id, as: OperationTicket.self) else {
            return error(404, "Operation '\(id.prefix(80))' was not found.")
        }
        return json(200, await operationJSON(id: id, ticket: ticket, request: request))
    }

    /// `GET /operations/v1` (production only): the exports made, newest first, `limit`
    /// (1–100, default 20) a page, filtered by `type` and `state`. As in production, a
    /// listed search export carries no details: no segment, no range, no results.
    func listOperations(_ request: Request, _ context: EmulatorContext) async -> Response {
        guard dialect == .fullstory else {
            return error(404, "There is no such endpoint in the seed dialect: GET /operations/v1.")
        }
        let query = request.uri.queryParameters
        guard let limit = Self.pageLimit(query["limit"].map(String.init)) else {
            return error(400, "limit must be an integer from 1 to 100; got '\(query["limit"].map { String($0.prefix(20)) } ?? "")'.")
        }
        var before: Int?
        if let token = query["pagination_token"].map(String.init), !token.isEmpty {
            guard let decoded = Int(token), decoded >= 0 else { return error(400, "Unknown pagination_token '\(token.prefix(40))'.") }
            before = decoded
        }
        let type = query["type"].map(String.init)
        let wantedState = query["state"].map { String($0).uppercased() }
        let now = nowMilliseconds()
        let page = await state.operations.page(before: before, limit: limit) { entry in
            (type == nil || type == "SEARCH_EXPORT") && (wantedState == nil || Self.stateName(entry.ticket, now: now) == wantedState)
        }
        var object: [String: Any] = ["operations": page.entries.map { entry -> [String: Any] in
            var operation: [String: Any] = [
                "id": entry.id, "type": "SEARCH_EXPORT", "state": Self.stateName(entry.ticket, now: now),
                "createdAt": WireTime.format(milliseconds: entry.ticket.created),
                "estimatePctComplete": Int(min(100, Double(max(0, now - entry.ticket.created)) / Double(max(entry.ticket.durationMilliseconds, 1)) * 100)),
            ]
            if now - entry.ticket.created >= entry.ticket.durationMilliseconds {
                operation["finishedAt"] = WireTime.format(milliseconds: entry.ticket.created + entry.ticket.durationMilliseconds)
            }
            return operation
        }]
        if let next = page.next { object["nextPaginationToken"] = String(next) }
        return json(200, object)
    }

    /// The production state of an operation at `now`: PENDING, then COMPLETED or FAILED.
    static func stateName(_ ticket: OperationTicket, now: Int64) -> String {
        guard now - ticket.created >= ticket.durationMilliseconds else { return "PENDING" }
        return ticket.fails ? "FAILED" : "COMPLETED"
    }

    /// The operation as of now: PENDING, then RUNNING (seed only) from a fifth of the way,
    /// then COMPLETED or FAILED once its duration has passed.
    private func operationJSON(id: String, ticket: OperationTicket, request: Request) async -> [String: Any] {
        let now = nowMilliseconds()
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

    func exportResults(_ request: Request, _ context: EmulatorContext) async -> Response {
        let id = Self.parameter("id", context)
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
            ? nowMilliseconds() - 1000 : nowMilliseconds() + Int64((configuration.linkTTL * 1000).rounded())
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

    func json(_ status: Int, _ object: [String: Any]) -> Response {
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

    /// What a proxy or captive portal in front of the API answers instead of JSON.
    static let proxyPage = """
        <!DOCTYPE html>
        <html><head><title>Sign in to continue</title></head>
        <body><h1>Network login required</h1><p>Your session has expired. Sign in to continue.</p></body></html>
        """

    /// The emulator's clock (``EmulatorConfiguration/now``) in Unix milliseconds.
    func nowMilliseconds() -> Int64 {
        Int64((configuration.now().timeIntervalSince1970 * 1000).rounded(.down))
    }
}
