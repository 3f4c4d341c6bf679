/// A saved conversation state (Roost's own API: /v1/sessions and /roost/v1/sessions).
public struct SessionObject: Codable, Sendable, Equatable, Hashable {
    public var id: String
    public var object: String
    public var model: String
    /// Unix seconds.
    public var created: Int
    public var updated: Int
    /// Tokens the saved state has consumed.
    public var tokens: Int
    /// Completed turns.
    public var turns: Int
    public var stateBytes: Int

    public init(id: String, model: String, created: Int, updated: Int, tokens: Int, turns: Int, stateBytes: Int) {
        self.id = id
        self.object = "session"
        self.model = model
        self.created = created
        self.updated = updated
        self.tokens = tokens
        self.turns = turns
        self.stateBytes = stateBytes
    }

    enum CodingKeys: String, CodingKey {
        case id, object, model, created, updated, tokens, turns
        case stateBytes = "state_bytes"
    }
}

/// POST /v1/sessions.
public struct SessionCreateRequest: Codable, Sendable, Equatable, Hashable {
    public var model: String
    public init(model: String) { self.model = model }
}

/// GET /v1/sessions.
public struct SessionList: Codable, Sendable, Equatable, Hashable {
    public var object: String
    public var data: [SessionObject]
    public init(data: [SessionObject]) {
        self.object = "list"
        self.data = data
    }
}

/// DELETE /v1/sessions/{id}.
public struct SessionDeleted: Codable, Sendable, Equatable, Hashable {
    public var id: String
    public var object: String
    public var deleted: Bool
    public init(id: String) {
        self.id = id
        self.object = "session.deleted"
        self.deleted = true
    }
}
