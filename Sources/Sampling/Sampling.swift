/// Logit processors and samplers (see ../shared/DESIGN.md).
public enum SamplingPlaceholder {}
