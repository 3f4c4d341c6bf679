import APITypes
import Engine
import Foundation
import Hummingbird

extension RoostAPI {
    func addSessionRoutes(_ router: Router<Ctx>) {
        for prefix in ["/v1/sessions", "/roost/v1/sessions"] {
            router.post(RouterPath(prefix)) { request, _ -> Response in
                await self.counted("sessions") { () async throws(APIError) -> Response in
                    let body = try await readBody(request, limits: self.limits)
                    let req = try APICoding.decodeRequest(SessionCreateRequest.self, from: Data(body), limits: self.limits)
                    let engine = self.engine
                    let who = peer(request)
                    do throws(EngineError) {
                        let info = try await offload { () throws(EngineError) -> SessionInfo in
                            try engine.createSession(model: req.model, principal: who)
                        }
                        return Reply.json(Self.object(info), status: .created)
                    } catch { throw error.apiError }
                }
            }
            router.get(RouterPath(prefix)) { request, _ -> Response in
                Reply.json(SessionList(data: self.engine.listSessions(principal: peer(request)).map(Self.object)))
            }
            router.post(RouterPath(prefix + "/import")) { request, _ -> Response in
                await self.counted("sessions") { () async throws(APIError) -> Response in
                    let body = try await readBody(request, limits: APILimits(maxBodyBytes: 1 << 34))
                    let engine = self.engine
                    let who = peer(request)
                    do throws(EngineError) {
                        let info = try await offload { () throws(EngineError) -> SessionInfo in
                            try engine.importSession(body, principal: who)
                        }
                        return Reply.json(Self.object(info), status: .created)
                    } catch { throw error.apiError }
                }
            }
            router.get(RouterPath(prefix + "/:id")) { request, ctx -> Response in
                await self.counted("sessions") { () throws(APIError) -> Response in
                    let id = ctx.parameters.get("id") ?? ""
                    do throws(EngineError) { return Reply.json(Self.object(try self.engine.session(id, principal: peer(request)))) } catch {
                        throw error.apiError
                    }
                }
            }
            router.get(RouterPath(prefix + "/:id/export")) { request, ctx -> Response in
                await self.counted("sessions") { () throws(APIError) -> Response in
                    let id = ctx.parameters.get("id") ?? ""
                    do throws(EngineError) {
                        let blob = try self.engine.exportSession(id, principal: peer(request))
                        var r = Reply.bytes(blob, contentType: "application/octet-stream")
                        r.headers[.contentDisposition] = "attachment; filename=\"\(id).session\""
                        return r
                    } catch { throw error.apiError }
                }
            }
            router.delete(RouterPath(prefix + "/:id")) { request, ctx -> Response in
                await self.counted("sessions") { () throws(APIError) -> Response in
                    let id = ctx.parameters.get("id") ?? ""
                    do throws(EngineError) {
                        try self.engine.deleteSession(id, principal: peer(request))
                        return Reply.json(SessionDeleted(id: id))
                    } catch { throw error.apiError }
                }
            }
        }
    }

    static func object(_ s: SessionInfo) -> SessionObject {
        SessionObject(id: s.id, model: s.model, created: Int(s.created), updated: Int(s.updated), tokens: s.tokens,
                      turns: s.turns, stateBytes: s.stateBytes)
    }
}
