using Shim.Os;
using Shim.Os.Io;

namespace Shim.Core.Stdio;

/// <summary>
/// What every process's stdio runs on, made once by the host: the I/O loop that copies the
/// streams, the reaper that starts logging binaries, and the clock of the output waits.
/// </summary>
/// <param name="Loop">The loop the copies run on (the shim has one; a test may bring its own).</param>
/// <param name="Reaper">Spawns and reaps logging binaries.</param>
/// <param name="Time">Clock and timers of <see cref="ProcessIo.WaitOutputReadAsync"/> and <see cref="ProcessIo.WaitOutputAsync"/>.</param>
public sealed record StdioContext(IoLoop Loop, Reaper Reaper, TimeProvider Time)
{
    /// <summary>The shim's log (the host sets it; tests leave it silent).</summary>
    public Logging.ShimLogger Log { get; init; } = Logging.ShimLogger.Discard;
}
