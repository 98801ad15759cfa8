using Shim.Core.Errors;
using TaskStatus = Containerd.Types.Task.Status;

namespace Shim.Core.Processes;

/// <summary>
/// What every state of a process has, init's (<see cref="InitState"/>) and an exec's
/// (<see cref="ExecState"/>) alike: a name for messages, the status State reports, the states it may
/// move to, and the state an exit leaves it in. The process holds the lock and the current state;
/// every transition goes through its one checked move (<see cref="ContainerProcess.Move(ProcessState, ProcessState)"/>),
/// which refuses a move this state does not list.
/// </summary>
internal abstract class ProcessState
{
    /// <summary>Name used in error messages.</summary>
    public abstract string Name { get; }

    /// <summary>Status reported by State.</summary>
    public abstract TaskStatus Status { get; }

    /// <summary>True when this state may move to <paramref name="next"/> (the edges of the transition graph).</summary>
    public abstract bool MayMoveTo(ProcessState next);

    /// <summary>The state after the process exits (the exit path's move), or null when an exit is no news here (deleted, never ran).</summary>
    public abstract ProcessState? OnExit();

    /// <summary>The kind of every refusal of this state.</summary>
    protected virtual ErrorKind RefusalKind => ErrorKind.FailedPrecondition;

    /// <summary>The one refusal: <paramref name="op"/> is not allowed in this state.</summary>
    protected ShimException Refused(string op) => new(RefusalKind, $"cannot {op} a process that is {Name}");

    /// <summary>A signal for a process that is gone (containerd's shim answers NotFound: "process already finished").</summary>
    protected virtual ShimException Finished() => new(ErrorKind.NotFound, $"cannot kill a process that is {Name}: process already finished");

    /// <inheritdoc />
    public override string ToString() => Name;
}
