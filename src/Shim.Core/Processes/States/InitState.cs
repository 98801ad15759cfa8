using Shim.Core.Errors;
using Shim.Core.Options;
using TaskStatus = Containerd.Types.Task.Status;

namespace Shim.Core.Processes;

/// <summary>
/// A state of a container's init process, as containerd's shim has them
/// (cmd/containerd-shim-runc-v2/process/init_state.go): each performs the operations it allows (the
/// runc call through the process's primitives, then the move) and refuses every other one here, in
/// the base class. A state only moves the process from itself, so an exit meanwhile is never undone.
/// <code>
/// created          → running | stopped | deleted
/// restore pending  → running | stopped | deleted
/// running          → pausing | stopped
/// pausing          → paused | running | stopped
/// paused           → running | stopped
/// stopped          → deleted
/// </code>
/// </summary>
internal abstract class InitState : ProcessState
{
    /// <summary>Created by runc create, not started.</summary>
    public static readonly InitState Created = new CreatedInit();

    /// <summary>Created from a checkpoint: runc has not run yet (pid 0); Start restores it.</summary>
    public static readonly InitState RestorePending = new RestorePendingInit();

    /// <summary>Started and not yet exited.</summary>
    public static readonly InitState Running = new RunningInit();

    /// <summary>runc pause is in flight.</summary>
    public static readonly InitState Pausing = new PausingInit();

    /// <summary>Frozen by runc pause.</summary>
    public static readonly InitState Paused = new PausedInit();

    /// <summary>Exited; its status can be read and it can be deleted.</summary>
    public static readonly InitState Stopped = new StoppedInit();

    /// <summary>Deleted; only a request racing the Delete can still see it, and it answers NotFound to all.</summary>
    public static readonly InitState Deleted = new DeletedInit();

    /// <summary>Start: runc start (or restore of a checkpoint); TaskStart goes out before any TaskExit.</summary>
    public virtual Task StartAsync(InitProcess init, ExitRouter router, Action<int>? beforeStartEvent, CancellationToken ct) => throw Refused("start");

    /// <summary>runc kill [--all].</summary>
    public virtual Task KillAsync(InitProcess init, uint signal, bool all, CancellationToken ct) => throw Finished();

    /// <summary>runc delete; the process is deleted afterwards.</summary>
    public virtual Task DeleteAsync(InitProcess init, CancellationToken ct) => throw Refused("delete");

    /// <summary>runc pause, PAUSING while it runs, then TaskPaused.</summary>
    public virtual Task PauseAsync(InitProcess init, CancellationToken ct) => throw Refused("pause");

    /// <summary>runc resume, then TaskResumed.</summary>
    public virtual Task ResumeAsync(InitProcess init, CancellationToken ct) => throw Refused("resume");

    /// <summary>runc update with a LinuxResources JSON.</summary>
    public virtual Task UpdateAsync(InitProcess init, ReadOnlyMemory<byte> resourcesJson, CancellationToken ct) => throw Refused("update");

    /// <summary>runc checkpoint.</summary>
    public virtual Task CheckpointAsync(InitProcess init, string imagePath, CheckpointRequestOptions options, CancellationToken ct) => throw Refused("checkpoint");

    /// <summary>Takes <paramref name="execId"/> for a new exec of the container (AlreadyExists if taken).</summary>
    public virtual void ReserveExec(InitProcess init, string execId) => throw Refused("exec in");

    /// <summary>True when init's exit in this state must resume the container before it is reported, so what is left can die.</summary>
    public virtual bool ResumesOnExit => false;

    /// <inheritdoc />
    public override ProcessState? OnExit() => Stopped;

    /// <summary>runc delete of a container whose init was never started (it kills it: its exit may have moved it to stopped meanwhile).</summary>
    private protected static async Task DeleteUnstartedAsync(InitProcess init, CancellationToken ct)
    {
        await init.RemoveAsync(drainOutput: false, ct).ConfigureAwait(false);
        init.Move(Deleted);
    }

    private sealed class CreatedInit : InitState
    {
        public override string Name => "created";

        public override TaskStatus Status => TaskStatus.Created;

        public override bool MayMoveTo(ProcessState next) => next == Running || next == Stopped || next == Deleted;

        public override async Task StartAsync(InitProcess init, ExitRouter router, Action<int>? beforeStartEvent, CancellationToken ct)
        {
            // the pid is known since create: no exit of an unknown pid to hold, only this process's
            using var start = init.Sequencer.BeginStart(init, router: null);
            await init.RunStartAsync(ct).ConfigureAwait(false);
            // running before the start event, so an exit held for it finds the process running
            init.Move(this, Running);
            start.Commit();
        }

        public override Task KillAsync(InitProcess init, uint signal, bool all, CancellationToken ct) => init.RunKillAsync(signal, all, ct);

        public override Task DeleteAsync(InitProcess init, CancellationToken ct) => DeleteUnstartedAsync(init, ct);

        public override Task UpdateAsync(InitProcess init, ReadOnlyMemory<byte> resourcesJson, CancellationToken ct) => init.RunUpdateAsync(resourcesJson, ct);

        public override void ReserveExec(InitProcess init, string execId) => init.TakeExecId(execId);
    }

    /// <remarks>Reported as CREATED, like the Go shim's createdCheckpoint state.</remarks>
    private sealed class RestorePendingInit : InitState
    {
        public override string Name => "created from a checkpoint (not yet restored)";

        public override TaskStatus Status => TaskStatus.Created;

        public override bool MayMoveTo(ProcessState next) => next == Running || next == Stopped || next == Deleted;

        /// <remarks>A failed restore stays pending: Start may be retried, Delete works.</remarks>
        public override Task StartAsync(InitProcess init, ExitRouter router, Action<int>? beforeStartEvent, CancellationToken ct) =>
            init.RunRestoreAsync(router, beforeStartEvent, from: this, ct);

        public override Task DeleteAsync(InitProcess init, CancellationToken ct) => DeleteUnstartedAsync(init, ct);

        protected override ShimException Finished() =>
            new(ErrorKind.NotFound, "cannot kill a process that is created from a checkpoint and not yet restored: no such process");
    }

    private sealed class RunningInit : InitState
    {
        public override string Name => "running";

        public override TaskStatus Status => TaskStatus.Running;

        public override bool MayMoveTo(ProcessState next) => next == Pausing || next == Stopped;

        public override Task KillAsync(InitProcess init, uint signal, bool all, CancellationToken ct) => init.RunKillAsync(signal, all, ct);

        public override async Task PauseAsync(InitProcess init, CancellationToken ct)
        {
            if (!init.Move(this, Pausing))
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
                init.Move(Pausing, this);
                throw;
            }
            if (init.Move(Pausing, Paused))
            {
                init.Events.Paused(init.ContainerId);
            }
        }

        public override Task UpdateAsync(InitProcess init, ReadOnlyMemory<byte> resourcesJson, CancellationToken ct) => init.RunUpdateAsync(resourcesJson, ct);

        public override Task CheckpointAsync(InitProcess init, string imagePath, CheckpointRequestOptions options, CancellationToken ct) =>
            init.RunCheckpointAsync(imagePath, options, ct);

        public override void ReserveExec(InitProcess init, string execId) => init.TakeExecId(execId);
    }

    private sealed class PausingInit : InitState
    {
        public override string Name => "pausing";

        public override TaskStatus Status => TaskStatus.Pausing;

        public override bool MayMoveTo(ProcessState next) => next == Paused || next == Running || next == Stopped;

        public override Task KillAsync(InitProcess init, uint signal, bool all, CancellationToken ct) => init.RunKillAsync(signal, all, ct);

        /// <remarks>runc pause may have frozen the cgroup already; resumed as a paused one is.</remarks>
        public override bool ResumesOnExit => true;
    }

    private sealed class PausedInit : InitState
    {
        public override string Name => "paused";

        public override TaskStatus Status => TaskStatus.Paused;

        public override bool MayMoveTo(ProcessState next) => next == Running || next == Stopped;

        public override Task KillAsync(InitProcess init, uint signal, bool all, CancellationToken ct) => init.RunKillAsync(signal, all, ct);

        public override async Task ResumeAsync(InitProcess init, CancellationToken ct)
        {
            await init.RunResumeAsync(ct).ConfigureAwait(false);
            if (init.Move(this, Running))
            {
                init.Events.Resumed(init.ContainerId);
            }
        }

        public override Task UpdateAsync(InitProcess init, ReadOnlyMemory<byte> resourcesJson, CancellationToken ct) => init.RunUpdateAsync(resourcesJson, ct);

        public override Task CheckpointAsync(InitProcess init, string imagePath, CheckpointRequestOptions options, CancellationToken ct) =>
            init.RunCheckpointAsync(imagePath, options, ct);

        /// <remarks>As containerd's shim (cmd/containerd-shim-runc-v2/process/init_state.go: pausedState.SetExited resumes).</remarks>
        public override bool ResumesOnExit => true;
    }

    private sealed class StoppedInit : InitState
    {
        public override string Name => "stopped";

        public override TaskStatus Status => TaskStatus.Stopped;

        public override bool MayMoveTo(ProcessState next) => next == Deleted;

        public override ProcessState? OnExit() => null;

        public override async Task DeleteAsync(InitProcess init, CancellationToken ct)
        {
            await init.RemoveAsync(drainOutput: true, ct).ConfigureAwait(false);
            init.Move(this, Deleted);
        }
    }

    private sealed class DeletedInit : InitState
    {
        public override string Name => "deleted";

        public override TaskStatus Status => TaskStatus.Stopped;

        public override bool MayMoveTo(ProcessState next) => false;

        /// <remarks>runc delete of a created container killed it; nobody waits for that exit.</remarks>
        public override ProcessState? OnExit() => null;

        protected override ErrorKind RefusalKind => ErrorKind.NotFound;

        protected override ShimException Finished() => Refused("kill");
    }
}
