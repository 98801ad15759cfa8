using Containerd.Events;
using Shim.Core.Errors;
using Shim.Core.Options;
using TaskStatus = Containerd.Types.Task.Status;

namespace Shim.Core.Processes;

/// <summary>
/// One state of a container process (init or exec). Each state performs the operations it allows
/// (the runc calls through the process's primitives, then the move to the next state) and refuses
/// every other one here, in the base class: FailedPrecondition naming the operation and the state.
/// The process holds the lock and the current state; a state only moves it from itself
/// (<see cref="ContainerProcess.Move"/>), so an exit meanwhile is never undone.
/// </summary>
internal abstract class ProcessState
{
    /// <summary>Name used in error messages.</summary>
    public abstract string Name { get; }

    /// <summary>Status reported by State.</summary>
    public abstract TaskStatus Status { get; }

    /// <summary>Init: runc start (or restore of a checkpoint); TaskStart goes out before any TaskExit.</summary>
    public virtual Task StartAsync(InitProcess init, ExitRouter router, Action<int>? beforeStartEvent, CancellationToken ct) => throw Refused("start");

    /// <summary>Init: runc kill [--all].</summary>
    public virtual Task KillAsync(InitProcess init, uint signal, bool all, CancellationToken ct) => throw Finished();

    /// <summary>Init: runc delete; the process is deleted afterwards.</summary>
    public virtual Task DeleteAsync(InitProcess init, CancellationToken ct) => throw Refused("delete");

    /// <summary>Init: runc pause, PAUSING while it runs, then TaskPaused.</summary>
    public virtual Task PauseAsync(InitProcess init, CancellationToken ct) => throw Refused("pause");

    /// <summary>Init: runc resume, then TaskResumed.</summary>
    public virtual Task ResumeAsync(InitProcess init, CancellationToken ct) => throw Refused("resume");

    /// <summary>Init: runc update with a LinuxResources JSON.</summary>
    public virtual Task UpdateAsync(InitProcess init, ReadOnlyMemory<byte> resourcesJson, CancellationToken ct) => throw Refused("update");

    /// <summary>Init: runc checkpoint.</summary>
    public virtual Task CheckpointAsync(InitProcess init, string imagePath, CheckpointRequestOptions options, CancellationToken ct) => throw Refused("checkpoint");

    /// <summary>Init: takes <paramref name="execId"/> for a new exec of the container (AlreadyExists if taken).</summary>
    public virtual void ReserveExec(InitProcess init, string execId) => throw Refused("exec in");

    /// <summary>Exec: runc exec --detach through the one start protocol; TaskExecStarted before any TaskExit.</summary>
    public virtual Task StartAsync(ExecProcess exec, ExitRouter router, RuntimeOptions options, CancellationToken ct) => throw Refused("start");

    /// <summary>Exec: a signal through its pidfd.</summary>
    public virtual void Kill(ExecProcess exec, uint signal) => throw Finished();

    /// <summary>Exec: closes its stdio and pid file; the process is deleted afterwards.</summary>
    public virtual Task DeleteAsync(ExecProcess exec) => throw Refused("delete");

    /// <summary>The state after the process exits (entered by the exit path, <see cref="ContainerProcess.Report"/>).</summary>
    public virtual ProcessState OnExit() => this;

    /// <summary>True when init's exit in this state must resume the container before it is reported, so what is left can die.</summary>
    public virtual bool ResumesOnExit => false;

    /// <summary>The kind of every refusal of this state.</summary>
    protected virtual ErrorKind RefusalKind => ErrorKind.FailedPrecondition;

    /// <summary>The one refusal: <paramref name="op"/> is not allowed in this state.</summary>
    protected ShimException Refused(string op) => new(RefusalKind, $"cannot {op} a process that is {Name}");

    /// <summary>A signal for a process that is gone (containerd's shim answers NotFound: "process already finished").</summary>
    protected virtual ShimException Finished() => new(ErrorKind.NotFound, $"cannot kill a process that is {Name}: process already finished");
}

/// <summary>Created by runc (init) or stored by Exec, not started.</summary>
internal sealed class CreatedState : ProcessState
{
    /// <summary>The one instance.</summary>
    public static readonly CreatedState Instance = new();

    /// <inheritdoc />
    public override string Name => "created";

    /// <inheritdoc />
    public override TaskStatus Status => TaskStatus.Created;

    /// <inheritdoc />
    public override async Task StartAsync(InitProcess init, ExitRouter router, Action<int>? beforeStartEvent, CancellationToken ct)
    {
        init.Sequencer.BeginStart(init);
        try
        {
            await init.RunStartAsync(ct).ConfigureAwait(false);
        }
        catch
        {
            init.Sequencer.StartFailed(init);
            throw;
        }
        // running before the start event, so an exit held for it finds the process running
        init.Move(this, RunningState.Instance);
        init.Sequencer.Started(init, new TaskStart { ContainerId = init.ContainerId, Pid = (uint)init.Pid });
    }

    /// <inheritdoc />
    public override Task KillAsync(InitProcess init, uint signal, bool all, CancellationToken ct) => init.RunKillAsync(signal, all, ct);

    /// <inheritdoc />
    public override async Task DeleteAsync(InitProcess init, CancellationToken ct)
    {
        await init.RemoveAsync(drainOutput: false, ct).ConfigureAwait(false);
        init.Become(DeletedState.Instance);
    }

    /// <inheritdoc />
    public override Task UpdateAsync(InitProcess init, ReadOnlyMemory<byte> resourcesJson, CancellationToken ct) => init.RunUpdateAsync(resourcesJson, ct);

    /// <inheritdoc />
    public override void ReserveExec(InitProcess init, string execId) => init.TakeExecId(execId);

    /// <inheritdoc />
    public override Task StartAsync(ExecProcess exec, ExitRouter router, RuntimeOptions options, CancellationToken ct) =>
        exec.RunExecAsync(router, options, from: this, ct);

    /// <inheritdoc />
    public override void Kill(ExecProcess exec, uint signal) =>
        throw new ShimException(ErrorKind.FailedPrecondition, "cannot kill an exec process that has not been started");

    /// <inheritdoc />
    public override Task DeleteAsync(ExecProcess exec)
    {
        exec.Remove();
        exec.Become(DeletedState.Instance);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public override ProcessState OnExit() => StoppedState.Instance;
}

/// <summary>Started and not yet exited.</summary>
internal sealed class RunningState : ProcessState
{
    /// <summary>The one instance.</summary>
    public static readonly RunningState Instance = new();

    /// <inheritdoc />
    public override string Name => "running";

    /// <inheritdoc />
    public override TaskStatus Status => TaskStatus.Running;

    /// <inheritdoc />
    public override Task KillAsync(InitProcess init, uint signal, bool all, CancellationToken ct) => init.RunKillAsync(signal, all, ct);

    /// <inheritdoc />
    public override async Task PauseAsync(InitProcess init, CancellationToken ct)
    {
        if (!init.Move(this, PausingState.Instance))
        {
            await init.State.PauseAsync(init, ct).ConfigureAwait(false); // left running meanwhile: the new state answers
            return;
        }
        try
        {
            await init.RunPauseAsync(ct).ConfigureAwait(false);
        }
        catch
        {
            init.Move(PausingState.Instance, this);
            throw;
        }
        if (init.Move(PausingState.Instance, PausedState.Instance))
        {
            init.Publish(new TaskPaused { ContainerId = init.ContainerId });
        }
    }

    /// <inheritdoc />
    public override Task UpdateAsync(InitProcess init, ReadOnlyMemory<byte> resourcesJson, CancellationToken ct) => init.RunUpdateAsync(resourcesJson, ct);

    /// <inheritdoc />
    public override Task CheckpointAsync(InitProcess init, string imagePath, CheckpointRequestOptions options, CancellationToken ct) =>
        init.RunCheckpointAsync(imagePath, options, ct);

    /// <inheritdoc />
    public override void ReserveExec(InitProcess init, string execId) => init.TakeExecId(execId);

    /// <inheritdoc />
    public override void Kill(ExecProcess exec, uint signal) => exec.Signal(signal);

    /// <inheritdoc />
    public override ProcessState OnExit() => StoppedState.Instance;
}

/// <summary>runc pause is in flight.</summary>
internal sealed class PausingState : ProcessState
{
    /// <summary>The one instance.</summary>
    public static readonly PausingState Instance = new();

    /// <inheritdoc />
    public override string Name => "pausing";

    /// <inheritdoc />
    public override TaskStatus Status => TaskStatus.Pausing;

    /// <inheritdoc />
    public override Task KillAsync(InitProcess init, uint signal, bool all, CancellationToken ct) => init.RunKillAsync(signal, all, ct);

    /// <inheritdoc />
    public override ProcessState OnExit() => StoppedState.Instance;

    /// <inheritdoc />
    /// <remarks>runc pause may have frozen the cgroup already; resumed as a paused one is.</remarks>
    public override bool ResumesOnExit => true;
}

/// <summary>Frozen by runc pause.</summary>
internal sealed class PausedState : ProcessState
{
    /// <summary>The one instance.</summary>
    public static readonly PausedState Instance = new();

    /// <inheritdoc />
    public override string Name => "paused";

    /// <inheritdoc />
    public override TaskStatus Status => TaskStatus.Paused;

    /// <inheritdoc />
    public override Task KillAsync(InitProcess init, uint signal, bool all, CancellationToken ct) => init.RunKillAsync(signal, all, ct);

    /// <inheritdoc />
    public override async Task ResumeAsync(InitProcess init, CancellationToken ct)
    {
        await init.RunResumeAsync(ct).ConfigureAwait(false);
        if (init.Move(this, RunningState.Instance))
        {
            init.Publish(new TaskResumed { ContainerId = init.ContainerId });
        }
    }

    /// <inheritdoc />
    public override Task UpdateAsync(InitProcess init, ReadOnlyMemory<byte> resourcesJson, CancellationToken ct) => init.RunUpdateAsync(resourcesJson, ct);

    /// <inheritdoc />
    public override Task CheckpointAsync(InitProcess init, string imagePath, CheckpointRequestOptions options, CancellationToken ct) =>
        init.RunCheckpointAsync(imagePath, options, ct);

    /// <inheritdoc />
    public override ProcessState OnExit() => StoppedState.Instance;

    /// <inheritdoc />
    /// <remarks>As containerd's shim (cmd/containerd-shim-runc-v2/process/init_state.go: pausedState.SetExited resumes).</remarks>
    public override bool ResumesOnExit => true;
}

/// <summary>
/// An exec whose start failed: it never ran and never will. Reported as CREATED, as containerd's
/// shim leaves such an exec in its created state (its Wait answers: the wait channel was closed).
/// </summary>
internal sealed class StartFailedState : ProcessState
{
    /// <summary>The one instance.</summary>
    public static readonly StartFailedState Instance = new();

    /// <inheritdoc />
    public override string Name => "created (its start failed)";

    /// <inheritdoc />
    public override TaskStatus Status => TaskStatus.Created;

    /// <inheritdoc />
    public override void Kill(ExecProcess exec, uint signal) =>
        throw new ShimException(ErrorKind.FailedPrecondition, $"cannot kill exec {exec.ExecId} of {exec.ContainerId}: its start failed, it never ran");

    /// <inheritdoc />
    public override Task DeleteAsync(ExecProcess exec)
    {
        exec.Remove();
        exec.Become(DeletedState.Instance);
        return Task.CompletedTask;
    }
}

/// <summary>Exited; its status can be read and it can be deleted.</summary>
internal sealed class StoppedState : ProcessState
{
    /// <summary>The one instance.</summary>
    public static readonly StoppedState Instance = new();

    /// <inheritdoc />
    public override string Name => "stopped";

    /// <inheritdoc />
    public override TaskStatus Status => TaskStatus.Stopped;

    /// <inheritdoc />
    public override async Task DeleteAsync(InitProcess init, CancellationToken ct)
    {
        await init.RemoveAsync(drainOutput: true, ct).ConfigureAwait(false);
        init.Become(DeletedState.Instance);
    }

    /// <inheritdoc />
    public override async Task DeleteAsync(ExecProcess exec)
    {
        await exec.DrainOutputAsync().ConfigureAwait(false);
        exec.Remove();
        exec.Become(DeletedState.Instance);
    }
}

/// <summary>Deleted; only a request racing the Delete can still see it, and it answers NotFound to all.</summary>
internal sealed class DeletedState : ProcessState
{
    /// <summary>The one instance.</summary>
    public static readonly DeletedState Instance = new();

    /// <inheritdoc />
    public override string Name => "deleted";

    /// <inheritdoc />
    public override TaskStatus Status => TaskStatus.Stopped;

    /// <inheritdoc />
    protected override ErrorKind RefusalKind => ErrorKind.NotFound;

    /// <inheritdoc />
    protected override ShimException Finished() => Refused("kill");
}
