using Shim.Core.Errors;
using Shim.Core.Logging;
using Shim.Core.Stdio;
using Shim.Os;
using Shim.Runc;

namespace Shim.Core.Processes;

/// <summary>A container's init process: created by runc create (or restore), started by runc start, signalled through runc kill.</summary>
internal sealed partial class InitProcess : ContainerProcess
{
    /// <summary>Records an init process; <see cref="ProcessStarter"/> runs runc create for it.</summary>
    internal InitProcess(string containerId, StdioPaths stdio, RuncClient runc, ExitSequencer sequencer)
        : this(containerId, stdio, runc, sequencer, InitState.Created)
    {
    }

    private InitProcess(string containerId, StdioPaths stdio, RuncClient runc, ExitSequencer sequencer, InitState initial)
        : base(containerId, "", stdio, sequencer, initial)
    {
        Runc = runc;
    }

    /// <summary>runc for this container.</summary>
    public RuncClient Runc { get; }

    /// <summary>The container, bound once by its constructor (before any exit is routed here).</summary>
    public Container? Container { get; private set; }

    /// <summary>The current state; it performs or refuses every operation.</summary>
    internal InitState State => (InitState)CurrentState;

    /// <summary>Called once, by the container's constructor.</summary>
    internal void BindTo(Container container)
    {
        if (Container is not null)
        {
            throw new InvalidOperationException($"init of {ContainerId} belongs to a container already");
        }
        Container = container;
    }

    /// <summary>
    /// Start: runc start of a created container, runc restore of one created from a checkpoint;
    /// <paramref name="beforeStartEvent"/> runs with a restored pid before the start event (cgroup
    /// and OOM registration; create ran it already).
    /// </summary>
    public async Task StartAsync(ExitRouter router, Action<int>? beforeStartEvent, CancellationToken ct)
    {
        using var turn = await TurnAsync(ct).ConfigureAwait(false);
        await State.StartAsync(this, router, beforeStartEvent, ct).ConfigureAwait(false);
    }

    /// <summary>Sends a signal through runc kill.</summary>
    public async Task KillAsync(uint signal, bool all, CancellationToken ct)
    {
        using var turn = await TurnAsync(ct).ConfigureAwait(false);
        await State.KillAsync(this, signal, all, ct).ConfigureAwait(false);
    }

    /// <summary>runc pause, with PAUSING visible while it runs.</summary>
    public async Task PauseAsync(CancellationToken ct)
    {
        using var turn = await TurnAsync(ct).ConfigureAwait(false);
        await State.PauseAsync(this, ct).ConfigureAwait(false);
    }

    /// <summary>runc resume.</summary>
    public async Task ResumeAsync(CancellationToken ct)
    {
        using var turn = await TurnAsync(ct).ConfigureAwait(false);
        await State.ResumeAsync(this, ct).ConfigureAwait(false);
    }

    /// <summary>runc update with a LinuxResources JSON.</summary>
    public async Task UpdateAsync(ReadOnlyMemory<byte> resourcesJson, CancellationToken ct)
    {
        using var turn = await TurnAsync(ct).ConfigureAwait(false);
        await State.UpdateAsync(this, resourcesJson, ct).ConfigureAwait(false);
    }

    /// <summary>Deletes the runc container after the process stopped (or was never started); an exit reaped and not yet reported is waited for.</summary>
    public async Task DeleteAsync(CancellationToken ct)
    {
        using var turn = await TurnAsync(ct).ConfigureAwait(false);
        await ReportedExitAsync(ct).ConfigureAwait(false);
        await State.DeleteAsync(this, ct).ConfigureAwait(false);
    }

    /// <summary>Takes <paramref name="execId"/> for a new exec, if the container's state allows one.</summary>
    public void ReserveExec(string execId) => State.ReserveExec(this, execId);

    /// <summary>runc start.</summary>
    internal Task RunStartAsync(CancellationToken ct) => Runc.StartAsync(ContainerId, ct);

    /// <summary>
    /// runc kill; NotFound when runc no longer knows the process. A SIGKILL for all processes of a
    /// container with its own pid namespace falls back to the init alone when runc cannot list the
    /// processes: runc before 1.2 lists them from the container's cgroup, which a rootless container
    /// may not have, and killing a pid namespace's init kills every process in it
    /// (pid_namespaces(7)), which is what runc 1.2 and later do for it (libcontainer's Signal).
    /// </summary>
    internal async Task RunKillAsync(uint signal, bool all, CancellationToken ct)
    {
        try
        {
            await RunKillOnceAsync(signal, all, ct).ConfigureAwait(false);
        }
        catch (RuncException ex) when (all && signal == Signals.SIGKILL && Container is { SharesPidNamespace: false })
        {
            Sequencer.Log.Warn("kill --all failed; killing the init ends the container's pid namespace", ShimLog.Field("id", ContainerId) + " " + ShimLog.Field("error", ex.Message));
            await RunKillOnceAsync(signal, all: false, ct).ConfigureAwait(false);
        }
    }

    private async Task RunKillOnceAsync(uint signal, bool all, CancellationToken ct)
    {
        try
        {
            await Runc.KillAsync(ContainerId, (int)signal, all, ct).ConfigureAwait(false);
        }
        catch (RuncException ex) when (ex.IsNotFound)
        {
            throw new ShimException(ErrorKind.NotFound, $"{ex.Runtime} kill {ContainerId}: process already finished ({ex.RuncMessage})", ex);
        }
    }

    /// <summary>runc pause.</summary>
    internal Task RunPauseAsync(CancellationToken ct) => Runc.PauseAsync(ContainerId, ct);

    /// <summary>runc resume.</summary>
    internal Task RunResumeAsync(CancellationToken ct) => Runc.ResumeAsync(ContainerId, ct);

    /// <summary>runc update.</summary>
    internal Task RunUpdateAsync(ReadOnlyMemory<byte> resourcesJson, CancellationToken ct) => Runc.UpdateAsync(ContainerId, resourcesJson, ct);

    /// <summary>Takes the exec id in the container.</summary>
    internal void TakeExecId(string execId) =>
        (Container ?? throw new ShimException(ErrorKind.Internal, $"exec in {ContainerId}: container not set up")).ReserveExec(execId);

    /// <summary>Drains the output of a stopped init (<paramref name="drainOutput"/>), runc delete, closes stdio and pidfd.</summary>
    internal async Task RemoveAsync(bool drainOutput, CancellationToken ct)
    {
        if (drainOutput)
        {
            await DrainOutputAsync().ConfigureAwait(false);
        }
        try
        {
            await Runc.DeleteAsync(ContainerId, force: false, ct).ConfigureAwait(false);
        }
        catch (RuncException ex) when (ex.IsNotFound)
        {
            // runc says "does not exist" for a container already gone; delete stays idempotent
        }
        Release();
    }

    /// <summary>
    /// Before init's exit is reported, as containerd's shim does (handleInitExit, then the paused
    /// state's SetExited): without a pid namespace of its own the container's other processes
    /// outlive init, so they are killed (runc kill --all); a paused container is resumed so what is
    /// left can die.
    /// </summary>
    internal override async Task PrepareExitAsync()
    {
        bool killAll = Container is { SharesPidNamespace: true };
        bool paused = State.ResumesOnExit;
        if (!killAll && !paused)
        {
            return;
        }
        await Task.Yield(); // runc is spawned off the exit loop
        if (killAll)
        {
            try
            {
                await Runc.KillAsync(ContainerId, Signals.SIGKILL, all: true, CancellationToken.None).ConfigureAwait(false);
            }
            catch (RuncException ex)
            {
                Sequencer.Log.Warn("kill --all after init exit failed: the container's other processes may live on", ShimLog.Field("id", ContainerId) + " " + ShimLog.Field("error", ex.Message));
            }
        }
        if (paused)
        {
            try
            {
                await Runc.ResumeAsync(ContainerId, CancellationToken.None).ConfigureAwait(false);
            }
            catch (RuncException ex)
            {
                // runc kill SIGKILL thaws a paused container itself; then there is nothing to resume
                Sequencer.Log.Debug("resume after init exit failed", ShimLog.Field("id", ContainerId) + " " + ShimLog.Field("error", ex.Message));
            }
        }
    }

    /// <inheritdoc />
    protected override void AfterExit() => Container?.OnInitExited(this);
}
