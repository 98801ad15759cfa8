using Shim.Core.Errors;
using Shim.Core.Options;
using TaskStatus = Containerd.Types.Task.Status;

namespace Shim.Core.Processes;

/// <summary>
/// A state of an exec process, as containerd's shim has them
/// (cmd/containerd-shim-runc-v2/process/exec_state.go), performing or refusing each operation.
/// <code>
/// created       → running | start failed | stopped | deleted
/// running       → stopped
/// start failed  → deleted
/// stopped       → deleted
/// </code>
/// </summary>
internal abstract class ExecState : ProcessState
{
    /// <summary>Stored by Exec, not started.</summary>
    public static readonly ExecState Created = new CreatedExec();

    /// <summary>Started by runc exec and not yet exited.</summary>
    public static readonly ExecState Running = new RunningExec();

    /// <summary>Its start failed: it never ran and never will.</summary>
    public static readonly ExecState StartFailed = new StartFailedExec();

    /// <summary>Exited; its status can be read and it can be deleted.</summary>
    public static readonly ExecState Stopped = new StoppedExec();

    /// <summary>Deleted; only a request racing the Delete can still see it, and it answers NotFound to all.</summary>
    public static readonly ExecState Deleted = new DeletedExec();

    /// <summary>runc exec --detach through the one start protocol; TaskExecStarted before any TaskExit.</summary>
    public virtual Task StartAsync(ExecProcess exec, ExitRouter router, RuntimeOptions options, CancellationToken ct) => throw Refused("start");

    /// <summary>A signal through its pidfd.</summary>
    public virtual void Kill(ExecProcess exec, uint signal) => throw Finished();

    /// <summary>Closes its stdio and pid file; the process is deleted afterwards.</summary>
    public virtual Task DeleteAsync(ExecProcess exec) => throw Refused("delete");

    /// <inheritdoc />
    public override ProcessState? OnExit() => Stopped;

    /// <summary>Delete of an exec that never ran: nothing to drain; its stdio and pid file go.</summary>
    private protected Task RemoveUnstarted(ExecProcess exec)
    {
        exec.Remove();
        exec.Move(this, Deleted);
        return Task.CompletedTask;
    }

    private sealed class CreatedExec : ExecState
    {
        public override string Name => "created";

        public override TaskStatus Status => TaskStatus.Created;

        public override bool MayMoveTo(ProcessState next) => next == Running || next == StartFailed || next == Stopped || next == Deleted;

        public override Task StartAsync(ExecProcess exec, ExitRouter router, RuntimeOptions options, CancellationToken ct) =>
            exec.RunExecAsync(router, options, from: this, ct);

        public override void Kill(ExecProcess exec, uint signal) =>
            throw new ShimException(ErrorKind.FailedPrecondition, $"cannot kill exec {exec.ExecId} of {exec.ContainerId}: it has not been started");

        public override Task DeleteAsync(ExecProcess exec) => RemoveUnstarted(exec);
    }

    private sealed class RunningExec : ExecState
    {
        public override string Name => "running";

        public override TaskStatus Status => TaskStatus.Running;

        public override bool MayMoveTo(ProcessState next) => next == Stopped;

        public override void Kill(ExecProcess exec, uint signal) => exec.Signal(signal);
    }

    /// <remarks>Reported as CREATED, as containerd's shim leaves such an exec in its created state (its Wait answers: the wait channel was closed).</remarks>
    private sealed class StartFailedExec : ExecState
    {
        public override string Name => "created (its start failed)";

        public override TaskStatus Status => TaskStatus.Created;

        public override bool MayMoveTo(ProcessState next) => next == Deleted;

        /// <remarks>What a start that failed after runc ran had started was killed; its exit is no news.</remarks>
        public override ProcessState? OnExit() => null;

        public override void Kill(ExecProcess exec, uint signal) =>
            throw new ShimException(ErrorKind.FailedPrecondition, $"cannot kill exec {exec.ExecId} of {exec.ContainerId}: its start failed, it never ran");

        public override Task DeleteAsync(ExecProcess exec) => RemoveUnstarted(exec);
    }

    private sealed class StoppedExec : ExecState
    {
        public override string Name => "stopped";

        public override TaskStatus Status => TaskStatus.Stopped;

        public override bool MayMoveTo(ProcessState next) => next == Deleted;

        public override ProcessState? OnExit() => null;

        public override async Task DeleteAsync(ExecProcess exec)
        {
            await exec.DrainOutputAsync().ConfigureAwait(false);
            exec.Remove();
            exec.Move(this, Deleted);
        }
    }

    private sealed class DeletedExec : ExecState
    {
        public override string Name => "deleted";

        public override TaskStatus Status => TaskStatus.Stopped;

        public override bool MayMoveTo(ProcessState next) => false;

        public override ProcessState? OnExit() => null;

        protected override ErrorKind RefusalKind => ErrorKind.NotFound;

        protected override ShimException Finished() => Refused("kill");
    }
}
