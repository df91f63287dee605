import CaptureFormat
import Foundation
import NIOCore
import PostgresProxy
import PostgresWire
import ProxyCore

/// What one replayed request got back: its results as the gate records them (one per statement
/// result), and the transaction state after it.
struct ReplayReply: Sendable {
    var responses: [PostgresResponse]
    var transaction: PostgresBackendMessage.TransactionStatus
    /// DataRows received, kept or not.
    var rows: UInt64
    /// From when the target could start it (sent, and the request before it answered) to its
    /// ReadyForQuery, in µs: its latency whether or not requests are pipelined.
    var micros: UInt64 = 0
    /// COPY … TO STDOUT's CopyData as recorded (up to the row cap, after the secrets pass).
    var copyOut: [[UInt8]] = []
}

struct ReplayConnectionError: Error, CustomStringConvertible { var description: String }

/// A logged-in connection to the target that runs one request at a time: it sends the request's
/// messages and gathers the answer up to ReadyForQuery. The handler lives on the channel's event
/// loop and is reached only through `NIOLoopBound`.
final class ReplayConnection: Sendable {
    let channel: any Channel
    let handler: NIOLoopBound<ReplayHandler>

    init(_ loggedIn: PostgresLoggedIn, recording: ReplayResultRecording) async throws {
        channel = loggedIn.channel
        let channel = self.channel
        handler = try await channel.eventLoop.submit {
            let h = ReplayHandler(recording: recording)
            try channel.pipeline.syncOperations.addHandler(h)
            return NIOLoopBound(h, eventLoop: channel.eventLoop)
        }.get()
    }

    /// Sends `messages` and waits for `readyCount` ReadyForQuery. `withholdRows`: the rows are
    /// counted and hashed, not kept (the original's were masked).
    /// `copyIn`: the data sent when the target asks for COPY data (nil: the COPY is failed).
    func run(_ messages: [PostgresFrontendMessage], readyCount: Int = 1, withholdRows: Bool = false, copyIn: [[UInt8]]? = nil) async throws -> ReplayReply {
        try await send(messages, readyCount: readyCount, withholdRows: withholdRows, copyIn: copyIn).get()
    }

    /// Sends a request without waiting for the answers to those sent before it (pipelining): the
    /// answers are matched to requests in order, each future completing at its ReadyForQuery.
    /// Not for a COPY FROM STDIN followed by more: the target reads nothing but COPY data until it ends.
    func send(_ messages: [PostgresFrontendMessage], readyCount: Int = 1, withholdRows: Bool = false, copyIn: [[UInt8]]? = nil) -> EventLoopFuture<ReplayReply> {
        let promise = channel.eventLoop.makePromise(of: ReplayReply.self)
        let handler = self.handler
        channel.eventLoop.execute {
            handler.value.start(messages, readyCount: readyCount, withholdRows: withholdRows, copyIn: copyIn, promise: promise)
        }
        return promise.futureResult
    }

    /// Sends several requests in one write and gets all their replies, in order, in one future:
    /// one hop to the event loop and one back for the lot, where one request each would cost
    /// two (what --fast spends most of its time on otherwise).
    func sendBatch(_ requests: [ReplayRequest]) -> EventLoopFuture<[ReplayReply]> {
        let promise = channel.eventLoop.makePromise(of: [ReplayReply].self)
        let handler = self.handler
        channel.eventLoop.execute { handler.value.startBatch(requests, promise: promise) }
        return promise.futureResult
    }

    func close() async {
        let handler = self.handler
        try? await channel.eventLoop.submit { handler.value.terminate() }.get()
        try? await channel.closeFuture.get()
    }
}

/// One request of a batch (`ReplayConnection.sendBatch`).
struct ReplayRequest: Sendable {
    var messages: [PostgresFrontendMessage]
    var readyCount = 1
    var withholdRows = false
}

/// The replies of a batch as they come; completed when the last arrives. Lives on the event loop.
final class ReplyBatch {
    var replies: [ReplayReply] = []
    let count: Int
    let promise: EventLoopPromise<[ReplayReply]>
    var completed = false

    init(count: Int, promise: EventLoopPromise<[ReplayReply]>) {
        self.count = count; self.promise = promise
        replies.reserveCapacity(count)
    }
}

/// The recording rules for replayed results: the gate's cap on rows and values, and its secrets
/// pass on what is kept (`RecordingMasks` without a session's masks: the replay does not know them).
struct ReplayResultRecording: Sendable {
    var maxRows: Int
    var masks: RecordingMasks
}

final class ReplayHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let recording: ReplayResultRecording
    var frames = FramedDecoding(PostgresBackendDecoder(maxMessageSize: 1 << 30))
    var context: ChannelHandlerContext?
    /// A request sent and not yet answered in full; the first is the one being answered.
    struct Pending {
        /// One of: a request's own promise, or the batch it belongs to.
        var promise: EventLoopPromise<ReplayReply>?
        var batch: ReplyBatch?
        var readyCount: Int
        var withholdRows: Bool
        var copyIn: [[UInt8]]?

        func succeed(_ reply: ReplayReply) {
            promise?.succeed(reply)
            if let batch, !batch.completed {
                batch.replies.append(reply)
                if batch.replies.count == batch.count { batch.completed = true; batch.promise.succeed(batch.replies) }
            }
        }

        func fail(_ error: any Error) {
            promise?.fail(error)
            if let batch, !batch.completed { batch.completed = true; batch.promise.fail(error) }
        }
    }
    var queue = CircularBuffer<Pending>()
    var readyLeft = 0
    var withholdRows = false
    var copyIn: [[UInt8]]?
    var copyOut: [[UInt8]] = []
    var responses: [PostgresResponse] = []
    var columns: [Column] = []
    var rows = RowRecorder(maxRows: 0)
    var notices: [PostgresNotice] = []
    var rowsReceived: UInt64 = 0
    var started = ContinuousClock.now
    var closedReason: String?

    init(recording: ReplayResultRecording) { self.recording = recording }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func start(_ messages: [PostgresFrontendMessage], readyCount: Int, withholdRows: Bool, copyIn: [[UInt8]]?, promise: EventLoopPromise<ReplayReply>) {
        guard let context, closedReason == nil else {
            return promise.fail(ReplayConnectionError(description: closedReason ?? "the connection is closed"))
        }
        var buffer = context.channel.allocator.buffer(capacity: 256)
        do {
            for m in messages { try m.encode(into: &buffer) }
        } catch {
            return promise.fail(ReplayConnectionError(description: "cannot encode the request: \(error)"))
        }
        let pending = Pending(promise: promise, batch: nil, readyCount: readyCount, withholdRows: withholdRows, copyIn: copyIn)
        queue.append(pending)
        if queue.count == 1 { activate(pending) }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    func startBatch(_ requests: [ReplayRequest], promise: EventLoopPromise<[ReplayReply]>) {
        guard let context, closedReason == nil else {
            return promise.fail(ReplayConnectionError(description: closedReason ?? "the connection is closed"))
        }
        guard !requests.isEmpty else { return promise.succeed([]) }
        var buffer = context.channel.allocator.buffer(capacity: 128 * requests.count)
        do {
            for r in requests { for m in r.messages { try m.encode(into: &buffer) } }
        } catch {
            return promise.fail(ReplayConnectionError(description: "cannot encode the request: \(error)"))
        }
        let batch = ReplyBatch(count: requests.count, promise: promise)
        let wasIdle = queue.isEmpty
        for r in requests { queue.append(Pending(promise: nil, batch: batch, readyCount: r.readyCount, withholdRows: r.withholdRows, copyIn: nil)) }
        if wasIdle { activate(queue.first!) }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    /// The request at the head of the queue is the one the target answers from now.
    func activate(_ p: Pending) {
        readyLeft = p.readyCount
        withholdRows = p.withholdRows
        responses = []; notices = []; rowsReceived = 0
        copyIn = p.copyIn; copyOut = []
        newResult(columns: [])
        started = .now
    }

    func terminate() {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: 5)
        try? PostgresFrontendMessage.terminate.encode(into: &buffer)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }

    func newResult(columns: [Column]) {
        self.columns = columns
        rows = RowRecorder(maxRows: withholdRows ? 0 : recording.maxRows)
    }

    func finishResult(tag: String, error: PostgresNotice?) {
        var r = PostgresResponse(columns: columns, commandTag: tag, error: error, notices: notices, cut: rows.cut)
        r.packedRows = rows.packedRows
        let sent = UInt64(r.packedRows.count) + (r.cut?.rows ?? 0)
        r.rowCount = Self.rowCount(fromTag: tag) ?? sent
        r.durationMicros = UInt64(max(0, (ContinuousClock.now - started).nanoseconds / 1000))
        responses.append(r)
        notices = []
        newResult(columns: [])
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        frames.append(unwrapInboundIn(data))
        do {
            while let (message, _) = try frames.next() { received(message, context: context) }
        } catch {
            fail("invalid message from the target: \(error)", context: context)
        }
    }

    func received(_ message: PostgresBackendMessage, context: ChannelHandlerContext) {
        switch message {
        case .rowDescription(let fields):
            newResult(columns: fields.map { Column(name: $0.name, typeOID: $0.typeOID, tableOID: $0.tableOID,
                                                   attributeNumber: UInt16(bitPattern: $0.columnAttribute), format: UInt8(truncatingIfNeeded: $0.format)) })
        case .dataRow(let row):
            rowsReceived += 1
            let kept = !rows.isFull
            let masks = recording.masks
            rows.add { w in
                var valueBytes = 0
                row.forEachValue { _, _, value in
                    guard let value else { w.varint(0); return }
                    valueBytes += value.count
                    // As the gate records a kept value: the secrets pass, then the cap.
                    let bytes = kept ? masks.value(Array(value.assumingMemoryBound(to: UInt8.self))) : Array(value.assumingMemoryBound(to: UInt8.self))
                    w.varint(UInt64(bytes.count) + 1)
                    w.append(raw: bytes)
                }
                return valueBytes
            }
        case .commandComplete(let tag):
            finishResult(tag: tag, error: nil)
        case .emptyQueryResponse:
            finishResult(tag: "", error: nil)
        case .portalSuspended:
            finishResult(tag: "(portal suspended)", error: nil)
        case .errorResponse(let d):
            finishResult(tag: "", error: recording.masks.notice(d.recorded))
        case .noticeResponse(let d):
            notices.append(recording.masks.notice(d.recorded))
        case .copyInResponse:
            // COPY FROM STDIN: the recorded data, as it was sent; without it (not a COPY the plan
            // replays with its data) the statement is failed, never sent something else.
            var buffer = context.channel.allocator.buffer(capacity: 64)
            if let data = copyIn {
                copyIn = nil
                for chunk in data { try? PostgresFrontendMessage.copyData(ByteBuffer(bytes: chunk)).encode(into: &buffer) }
                try? PostgresFrontendMessage.copyDone.encode(into: &buffer)
            } else {
                try? PostgresFrontendMessage.copyFail(message: "sessreplay has no recorded data for this COPY").encode(into: &buffer)
            }
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        case .copyData(let data):
            // COPY TO STDOUT, as the gate records it: a chunk per CopyData up to the row cap, after the
            // secrets pass; none kept when the original's results were masked.
            rowsReceived += 1
            if !withholdRows && copyOut.count < recording.maxRows { copyOut.append(recording.masks.value(Array(data.readableBytesView))) }
        case .readyForQuery(let status):
            readyLeft -= 1
            guard readyLeft <= 0, let head = queue.popFirst() else { return }
            let micros = UInt64(max(0, (ContinuousClock.now - started).nanoseconds / 1000))
            head.succeed(ReplayReply(responses: responses, transaction: status, rows: rowsReceived, micros: micros, copyOut: copyOut))
            if let next = queue.first { activate(next) }
        default:
            // ParseComplete, BindComplete, NoData, ParameterDescription, CopyData (out), CopyDone,
            // ParameterStatus, notifications: nothing the record keeps.
            break
        }
    }

    func fail(_ reason: String, context: ChannelHandlerContext) {
        closedReason = reason
        failPending(reason)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if closedReason == nil { closedReason = "the target closed the connection" }
        failPending(closedReason!)
        context.fireChannelInactive()
    }

    func failPending(_ reason: String) {
        while let p = queue.popFirst() { p.fail(ReplayConnectionError(description: reason)) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail("connection error: \(error)", context: context)
    }

    static func rowCount(fromTag tag: String) -> UInt64? {
        guard let space = tag.lastIndex(of: " ") else { return nil }
        return UInt64(tag[tag.index(after: space)...])
    }
}

extension PostgresBackendMessage.Diagnostics {
    /// As the gate records an error or notice: the fields an investigator needs.
    var recorded: PostgresNotice {
        PostgresNotice(severity: severity ?? "", sqlState: sqlState ?? "", message: message ?? "", detail: detail ?? "", hint: hint ?? "")
    }
}
