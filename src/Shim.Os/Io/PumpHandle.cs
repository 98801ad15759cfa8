namespace Shim.Os.Io;

/// <summary>A running <see cref="IoLoop.StartPump"/>: its outcome, and how far it got meanwhile.</summary>
public sealed class PumpHandle
{
    private readonly PumpOperation _pump;

    internal PumpHandle(PumpOperation pump) => _pump = pump;

    /// <summary>Completes at EOF, on cancellation or when the loop stops; never faults for I/O errors.</summary>
    public Task<PumpResult> Completion => _pump.Completion;

    /// <summary>Bytes delivered so far: a copy whose count still moves is not stuck.</summary>
    public long BytesCopied => _pump.Copied;
}
