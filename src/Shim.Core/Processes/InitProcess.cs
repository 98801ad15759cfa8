using Containerd.Events;
using Shim.Core.Errors;
using Shim.Core.Events;
using Shim.Core.Stdio;
using Shim.Os;
using Shim.Runc;

namespace Shim.Core.Processes;

/// <summary>A container's init process: started by runc start, signalled through runc kill.</summary>
public sealed partial class InitProcess : ContainerProcess
{

    /// <summary>Creates the record of an init process runc has just created.</summary>
    public InitProcess(string containerId, int pid, StdioPaths stdio, ProcessIo io, RuncClient runc, IEventPublisher events)
        : base(containerId, "", stdio, events)
    {
        Pid = pid;
        Io = io;
        Runc = runc;
    }

    /// <summary>runc for this container.</summary>
    public RuncClient Runc { get; }

    /// <summary>The container, set right after it is built (before exits are routed here).</summary>
    public Container? Container { get; set; }

    /// <summary>runc start; TaskStart goes out before any TaskExit of this process.</summary>
    public async Task StartAsync(CancellationToken ct)
    {
        BeginStart();
        try
        {
            await Runc.StartAsync(ContainerId, ct).ConfigureAwait(false);
        }
        catch
        {
            AbortStart();
            throw;
        }
        EndStart(new TaskStart { ContainerId = ContainerId, Pid = (uint)Pid });
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
        lock (Gate)
        {
            State.CheckPause();
            Become(PausingState.Instance);
        }
        try
        {
            await Runc.PauseAsync(ContainerId, ct).ConfigureAwait(false);
        }
        catch
        {
            Transition(PausingState.Instance, RunningState.Instance);
            throw;
        }
        if (Transition(PausingState.Instance, PausedState.Instance))
        {
            Events.Publish(new TaskPaused { ContainerId = ContainerId });
        }
    }

    /// <summary>runc resume.</summary>
    public async Task ResumeAsync(CancellationToken ct)
    {
        Check(s => s.CheckResume());
        await Runc.ResumeAsync(ContainerId, ct).ConfigureAwait(false);
        if (Transition(PausedState.Instance, RunningState.Instance))
        {
            Events.Publish(new TaskResumed { ContainerId = ContainerId });
        }
    }

    /// <summary>runc update with a LinuxResources JSON.</summary>
    public async Task UpdateAsync(ReadOnlyMemory<byte> resourcesJson, CancellationToken ct)
    {
        Check(s => s.CheckUpdate("update"));
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
        Become(DeletedState.Instance);
    }

    /// <summary>Applies an exit that waited for the container's execs.</summary>
    public void ApplyDeferredExit(ChildExit exit)
    {
        Container?.BeforeInitExitEvent?.Invoke(Container);
        lock (Gate)
        {
            ApplyExit(exit);
        }
        Container?.OnInitExited(this);
    }

    /// <inheritdoc />
    protected override bool DeliverExit(ChildExit exit)
    {
        // the init exit is published after every running exec's exit (containerd relies on it)
        if (Container is { } container && container.DeferInitExit(exit))
        {
            return false;
        }
        Container?.BeforeInitExitEvent?.Invoke(Container);
        ApplyExit(exit);
        return true;
    }

    /// <inheritdoc />
    protected override void AfterExit() => Container?.OnInitExited(this);
}
