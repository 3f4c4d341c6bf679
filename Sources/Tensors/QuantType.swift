import CKernels
public enum TensorsPlaceholder {}
