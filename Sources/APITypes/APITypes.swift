/// Codable request and response types of the HTTP API (see ../shared/DESIGN.md).
public enum APITypesPlaceholder {}
