/// The greylag release, as shown in headers and `--version`.
public enum GreylagVersion {
    public static let string = "0.1.0"
    /// `greylag-0.1.0`, the form headers carry.
    public static var software: String { "greylag-\(string)" }
}
