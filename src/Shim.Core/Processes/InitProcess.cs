using Containerd.Events;
using Shim.Core.Errors;
using Shim.Core.Events;
using Shim.Core.Logging;
using Shim.Core.Stdio;
using Shim.Os;
using Shim.Runc;

namespace Shim.Core.Processes;

/// <summary>A container's init process: created by runc create (or restore), started by runc start, signalled through runc kill.</summary>
public sealed partial class InitProcess : ContainerProcess
{
    /// <summary>Records an init process; <see cref="ProcessStarter"/> runs runc create for it.</summary>
    internal InitProcess(string containerId, StdioPaths stdio, RuncClient runc, IEventPublisher events, ExitSequencer sequencer)
        : base(containerId, "", stdio, events, sequencer)
    {
        Runc = runc;
    }

    /// <summary>runc for this container.</summary>
    public RuncClient Runc { get; }

    /// <summary>The container, set right after it is built (before any exit is routed here).</summary>
    public Container? Container { get; set; }

    /// <summary>runc start; TaskStart goes out before any TaskExit of this process.</summary>
    public async Task StartAsync(CancellationToken ct)
    {
        Check(s => s.CheckStart());
        Sequencer.BeginStart(this);
        try
        {
            await Runc.StartAsync(ContainerId, ct).ConfigureAwait(false);
        }
        catch
        {
            Sequencer.StartFailed(this);
            throw;
        }
        MarkStarted();
        Sequencer.Started(this, new TaskStart { ContainerId = ContainerId, Pid = (uint)Pid });
    }

    /// <summary>Sends a signal through runc kill.</summary>
    public async Task KillAsync(uint signal, bool all, CancellationToken ct)
    {
        Check(s => s.CheckKill(isExec: false));
        try
        {
            await Runc.KillAsync(ContainerId, (int)signal, all, ct).ConfigureAwait(false);
        }
        catch (RuncException ex) when (ex.IsNotFound)
        {
            throw new ShimException(ErrorKind.NotFound, $"runc kill {ContainerId}: process already finished ({ex.RuncMessage})", ex);
        }
    }

    /// <summary>runc pause, with PAUSING visible while it runs.</summary>
    public async Task PauseAsync(CancellationToken ct)
    {
        Step(static s => s.BeginPause());
        try
        {
            await Runc.PauseAsync(ContainerId, ct).ConfigureAwait(false);
        }
        catch
        {
            Step(static s => s.OnPauseEnded(paused: false));
            throw;
        }
        if (Step(static s => s.OnPauseEnded(paused: true)).After == PausedState.Instance)
        {
            Events.Publish(new TaskPaused { ContainerId = ContainerId });
        }
    }

    /// <summary>runc resume.</summary>
    public async Task ResumeAsync(CancellationToken ct)
    {
        Check(s => s.CheckResume());
        await Runc.ResumeAsync(ContainerId, ct).ConfigureAwait(false);
        if (Step(static s => s.OnResumed()) is { Before: PausedState, After: RunningState })
        {
            Events.Publish(new TaskResumed { ContainerId = ContainerId });
        }
    }

    /// <summary>runc update with a LinuxResources JSON.</summary>
    public async Task UpdateAsync(ReadOnlyMemory<byte> resourcesJson, CancellationToken ct)
    {
        Check(static s => s.CheckUpdate());
        await Runc.UpdateAsync(ContainerId, resourcesJson, ct).ConfigureAwait(false);
    }

    /// <summary>Deletes the runc container after the process stopped (or was never started).</summary>
    public async Task DeleteAsync(CancellationToken ct)
    {
        var state = Check(s => s.CheckDelete());
        if (state == StoppedState.Instance && Io is not null)
        {
            await Io.WaitOutputAsync(OutputDrainTimeout).ConfigureAwait(false);
        }
        try
        {
            await Runc.DeleteAsync(ContainerId, force: false, ct).ConfigureAwait(false);
        }
        catch (RuncException ex) when (ex.IsNotFound)
        {
            // runc says "does not exist" for a container already gone; delete stays idempotent
        }
        Io?.Dispose();
        DropPidFd();
        Become(DeletedState.Instance);
    }

    /// <summary>
    /// Before init's exit is reported, as containerd's shim does (handleInitExit, then the paused
    /// state's SetExited): without a pid namespace of its own the container's other processes
    /// outlive init, so they are killed (runc kill --all); a paused container is resumed so what is
    /// left can die.
    /// </summary>
    internal override async Task PrepareExitAsync()
    {
        var state = State;
        bool killAll = Container is { SharesPidNamespace: true };
        bool paused = state == PausedState.Instance || state == PausingState.Instance;
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
                ShimLog.Warn("runc kill --all after init exit failed: the container's other processes may live on", ShimLog.Field("id", ContainerId) + " " + ShimLog.Field("error", ex.RuncMessage));
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
                ShimLog.Debug("runc resume after init exit", ShimLog.Field("id", ContainerId) + " " + ShimLog.Field("error", ex.RuncMessage));
            }
        }
    }

    /// <inheritdoc />
    protected override void AfterReport() => Container?.OnInitExited(this);
}
