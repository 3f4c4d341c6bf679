public enum TokenizersPlaceholder {}
