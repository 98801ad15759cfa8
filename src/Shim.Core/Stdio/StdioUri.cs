using Shim.Core.Errors;

namespace Shim.Core.Stdio;

/// <summary>
/// The stdio strings of Create and Exec: a bare FIFO path, or a URI whose scheme picks the mode
/// (fifo, file, binary, binary-v2). The scheme is what precedes "://", as Go's url.Parse reads it
/// in containerd's shim; .NET's Uri alone would take "a://" or "x://[" for file paths.
/// </summary>
internal static class StdioUri
{
    /// <summary>The scheme ("" for a bare path) and the unescaped path; InvalidArgument when the text is no URI.</summary>
    public static (string Scheme, string Path) Split(string uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        int i = uri.IndexOf("://", StringComparison.Ordinal);
        if (i < 0)
        {
            return ("", uri);
        }
        string scheme = uri[..i];
        if (!Uri.TryCreate(uri, UriKind.Absolute, out var parsed) || !string.Equals(parsed.Scheme, scheme, StringComparison.OrdinalIgnoreCase))
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"stdio \"{uri}\" is not a valid URI (scheme://path)");
        }
        return (parsed.Scheme, Uri.UnescapeDataString(parsed.AbsolutePath));
    }
}
