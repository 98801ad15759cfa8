namespace Shim.Os.Io;

/// <summary>Outcome of <see cref="IoLoop.FeedAsync"/>: bytes written, and the errno that stopped the feed early (0 if all went in).</summary>
public readonly record struct FeedResult(long BytesWritten, int Errno)
{
    /// <summary>True when the feed was stopped before it wrote everything (cancelled, or its loop shut down).</summary>
    public bool Cancelled => Errno == Interop.Errno.ECANCELED;
}
