namespace Shim.Os;

/// <summary>Outcome of <see cref="IoLoop.Pump"/>: bytes delivered, bytes discarded after the destination failed, and the first errno seen (0 if none).</summary>
public readonly record struct PumpResult(long BytesCopied, long BytesDropped, int Errno);
