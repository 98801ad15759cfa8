namespace Shim.Os.Io;

/// <summary>Outcome of <see cref="IoLoop.Pump"/>: bytes delivered, bytes discarded after the destination failed, and the first errno seen (0 if none).</summary>
public readonly record struct PumpResult(long BytesCopied, long BytesDropped, int Errno)
{
    /// <summary>True when the pump was stopped before its end of file (cancelled, or its loop shut down).</summary>
    public bool Cancelled => Errno == PumpOperation.ECANCELED;
}
