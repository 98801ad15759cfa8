using Shim.Core.Errors;
using TaskStatus = Containerd.Types.Task.Status;

namespace Shim.Core.Processes;

/// <summary>
/// Init created from a checkpoint: runc has not run yet (no runc container, pid 0); Start does
/// <c>runc restore</c>. Reported as CREATED, like the Go shim's createdCheckpoint state.
/// </summary>
internal sealed class RestorePendingState : ProcessState
{
    /// <summary>The one instance.</summary>
    public static readonly RestorePendingState Instance = new();

    /// <inheritdoc />
    public override string Name => "created from a checkpoint (not yet restored)";

    /// <inheritdoc />
    public override TaskStatus Status => TaskStatus.Created;

    /// <inheritdoc />
    /// <remarks>A failed restore stays pending: Start may be retried, Delete works.</remarks>
    public override Task StartAsync(InitProcess init, ExitRouter router, Action<int>? beforeStartEvent, CancellationToken ct) =>
        init.RunRestoreAsync(router, beforeStartEvent, from: this, ct);

    /// <inheritdoc />
    public override async Task DeleteAsync(InitProcess init, CancellationToken ct)
    {
        await init.RemoveAsync(drainOutput: false, ct).ConfigureAwait(false);
        init.Become(DeletedState.Instance);
    }

    /// <inheritdoc />
    protected override ShimException Finished() =>
        new(ErrorKind.NotFound, "cannot kill a process that is created from a checkpoint and not yet restored: no such process");

    /// <inheritdoc />
    public override ProcessState OnExit() => StoppedState.Instance;
}
