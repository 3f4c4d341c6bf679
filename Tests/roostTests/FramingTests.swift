import Foundation
import Testing
@testable import roost

@Suite struct ChunkedDecoding {
    /// Feeds `wire` in pieces of `step` bytes and returns the body.
    func decode(_ wire: String, step: Int) throws -> (String, Bool) {
        var decoder = ChunkedDecoder()
        let bytes = Array(wire.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            out += try decoder.feed(bytes[i..<min(i + step, bytes.count)])
            i += step
        }
        return (String(decoding: out, as: UTF8.self), decoder.isDone)
    }

    @Test func piecesOfEverySize() throws {
        let wire = "5\r\nHello\r\n7;ext=1\r\n, world\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: t\r\n\r\n"
        for step in 1...wire.utf8.count {
            let (body, done) = try decode(wire, step: step)
            #expect(body == "Hello, worldabcdefghijklmnopqrstuvwxyz")
            #expect(done)
        }
    }

    @Test func notDoneBeforeTheLastChunk() throws {
        let (body, done) = try decode("3\r\nabc\r\n", step: 2)
        #expect(body == "abc")
        #expect(!done)
    }

    @Test func bytesAfterTheEndAreIgnored() throws {
        let (body, done) = try decode("2\r\nok\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n", step: 100)
        #expect(body == "ok" && done)
    }

    @Test func badSizeLine() {
        var decoder = ChunkedDecoder()
        #expect(throws: ChunkedDecoder.Failure.self) { try decoder.feed(Array("zz\r\n".utf8)) }
        var second = ChunkedDecoder()
        #expect(throws: ChunkedDecoder.Failure.missingCRLF) { try second.feed(Array("2\r\nabX\r\n".utf8)) }
    }
}

@Suite struct SSEParsing {
    func events(_ wire: String, step: Int) -> [SSEEvent] {
        var parser = SSEParser()
        let bytes = Array(wire.utf8)
        var out: [SSEEvent] = []
        var i = 0
        while i < bytes.count {
            out += parser.feed(bytes[i..<min(i + step, bytes.count)])
            i += step
        }
        if let last = parser.finish() { out.append(last) }
        return out
    }

    @Test func openAIStream() {
        let wire = "data: {\"a\":1}\n\n: keep-alive\n\ndata: {\"b\":\"x y\"}\r\n\r\ndata: [DONE]\n\n"
        for step in 1...wire.utf8.count {
            #expect(events(wire, step: step) == [SSEEvent(data: "{\"a\":1}"), SSEEvent(data: "{\"b\":\"x y\"}"),
                                                 SSEEvent(data: "[DONE]")])
        }
    }

    @Test func multiLineDataEventNamesAndCR() {
        let wire = "event: note\rdata: one\rdata:two\r\rdata\n\n"
        #expect(events(wire, step: 3) == [SSEEvent(event: "note", data: "one\ntwo"), SSEEvent(data: "")])
    }

    @Test func unterminatedLastEvent() {
        #expect(events("data: tail", step: 4) == [SSEEvent(data: "tail")])
    }

    @Test func utf8SplitAcrossPieces() {
        #expect(events("data: grüße 🙂\n\n", step: 1) == [SSEEvent(data: "grüße 🙂")])
    }
}

@Suite struct ResponseHeads {
    @Test func statusAndHeaders() throws {
        let head = try ResponseHead.parse(Array("HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\ncontent-length: 12\r\n".utf8))
        #expect(head.status == 403)
        #expect(head.reason == "Forbidden")
        #expect(head.headers["content-type"] == "application/json")
        #expect(head.framing == .length(12))
    }

    @Test func framing() throws {
        #expect(try ResponseHead.parse(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked".utf8)).framing == .chunked)
        #expect(try ResponseHead.parse(Array("HTTP/1.1 200 OK".utf8)).framing == .untilClose)
        #expect(try ResponseHead.parse(Array("HTTP/1.1 204 No Content".utf8)).framing == .length(0))
    }

    @Test func malformed() {
        #expect(throws: ResponseHead.Failure.self) { try ResponseHead.parse(Array("SSH-2.0-OpenSSH".utf8)) }
        #expect(throws: ResponseHead.Failure.self) { try ResponseHead.parse(Array("HTTP/1.1 200 OK\r\nno colon".utf8)) }
    }
}
