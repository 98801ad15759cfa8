using Shim.Core.Errors;
using TaskStatus = Containerd.Types.Task.Status;

namespace Shim.Core.Processes;

/// <summary>
/// Init created from a checkpoint: runc has not run yet (no runc container, pid 0); Start does
/// <c>runc restore</c>. Reported as CREATED, like the Go shim's createdCheckpoint state.
/// </summary>
public sealed class RestorePendingState : ProcessState
{
    /// <summary>The one instance.</summary>
    public static readonly RestorePendingState Instance = new();
    /// <inheritdoc />
    public override string Name => "created from a checkpoint (not yet restored)";
    /// <inheritdoc />
    public override TaskStatus Status => TaskStatus.Created;
    /// <inheritdoc />
    public override void CheckStart() { }
    /// <inheritdoc />
    public override void CheckKill(bool isExec) =>
        throw new ShimException(ErrorKind.NotFound, "cannot kill a process that is created from a checkpoint and not yet restored: no such process");
    /// <inheritdoc />
    public override void CheckDelete() { }
    /// <inheritdoc />
    public override ProcessState OnExit() => StoppedState.Instance;
    /// <inheritdoc />
    public override ProcessState OnStart() => RunningState.Instance;
}
