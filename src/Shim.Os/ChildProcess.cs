namespace Shim.Os;

/// <summary>A child started through <see cref="Reaper.Spawn"/>.</summary>
public sealed class ChildProcess
{
    internal ChildProcess(int pid, Task<ChildExit> exited)
    {
        Pid = pid;
        Exited = exited;
    }

    /// <summary>The child's pid.</summary>
    public int Pid { get; }

    /// <summary>Completes (asynchronously) when the reaper has reaped the child.</summary>
    public Task<ChildExit> Exited { get; }
}
