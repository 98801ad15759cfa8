using System.Diagnostics.CodeAnalysis;

namespace Shim.Os.Io;

/// <summary>
/// Outcome of <see cref="IoLoop.DrainAsync"/> or <see cref="IoLoop.ReadFirstAsync"/>: the bytes read,
/// whether the source offered more than the limit, and the errno that ended the read (0 at end of file).
/// </summary>
[SuppressMessage("Performance", "CA1819:Properties should not return arrays", Justification = "the bytes read, handed over once; a copy would be waste")]
public readonly record struct CaptureResult(byte[] Data, bool Truncated, int Errno)
{
    /// <summary>True when the read was stopped before its end (cancelled, or its loop shut down).</summary>
    public bool Cancelled => Errno == Interop.Errno.ECANCELED;

    /// <summary>True when the source reached end of file with everything kept: not cut at the limit, cancelled or failed.</summary>
    public bool Complete => Errno == 0 && !Truncated;
}
