using Containerd.Events;
using Shim.Core.Events;
using Shim.Core.Logging;
using Shim.Core.Stdio;
using Shim.Os;
using Shim.Protos;

namespace Shim.Core.Processes;

/// <summary>
/// What init and exec processes share: state, exit record and the start protocol that keeps every
/// TaskExit behind its start event. The process owns the lock; the state decides.
/// </summary>
public abstract class ContainerProcess : IExitTarget
{
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ProcessState _state = CreatedState.Instance; // guarded by Gate
    private bool _starting;                              // guarded by Gate: exits wait until the start event is out
    private ChildExit? _stashedExit;                     // guarded by Gate

    /// <summary>Creates the record of a process of container <paramref name="containerId"/>.</summary>
    protected ContainerProcess(string containerId, string execId, StdioPaths stdio, IEventPublisher events)
    {
        ContainerId = containerId;
        ExecId = execId;
        Stdio = stdio;
        Events = events;
    }

    /// <summary>Guards the state, the start protocol and the exit record.</summary>
    protected Lock Gate { get; } = new();

    /// <summary>Where events go.</summary>
    protected IEventPublisher Events { get; }

    /// <summary>The container id.</summary>
    public string ContainerId { get; }

    /// <summary>The exec id; empty for init.</summary>
    public string ExecId { get; }

    /// <summary>The process id containerd uses: the exec id, or the container id for init.</summary>
    public string Id => ExecId.Length > 0 ? ExecId : ContainerId;

    /// <summary>Host pid; 0 before an exec is started.</summary>
    public int Pid { get; protected set; }

    /// <summary>Stdio as requested.</summary>
    public StdioPaths Stdio { get; }

    /// <summary>The shim side of the stdio once opened.</summary>
    public ProcessIo? Io { get; protected set; }

    /// <summary>Exit code (or 128+signal) once stopped.</summary>
    public int ExitStatus { get; private set; }

    /// <summary>When the exit was reaped; default while running.</summary>
    public DateTimeOffset ExitedAt { get; private set; }

    /// <summary>Completes when the process has exited.</summary>
    public Task Exited => _exited.Task;

    /// <summary>The current state.</summary>
    public ProcessState State
    {
        get
        {
            lock (Gate)
            {
                return _state;
            }
        }
    }

    /// <summary>Waits for the exit.</summary>
    public Task WaitAsync(CancellationToken ct) => _exited.Task.WaitAsync(ct);

    /// <summary>Drops the shim's stdin writer so the process sees EOF once the client closes too.</summary>
    public void CloseStdin() => Io?.CloseStdin();

    /// <summary>Delete waits for the output copies as long as they move; this long without a byte moving, nobody reads them.</summary>
    protected static readonly TimeSpan OutputDrainTimeout = TimeSpan.FromSeconds(10);

    /// <summary>How long an exit waits, with nothing moving, for its output to be read.</summary>
    internal static TimeSpan OutputReadIdleLimit { get; set; } = TimeSpan.FromSeconds(1);

    /// <inheritdoc />
    /// <remarks>
    /// An exit is reported once the client has read the output the process left behind (or
    /// nothing moved for <see cref="OutputReadIdleLimit"/>): ctr closes its FIFOs as soon as
    /// it sees the exit and would lose the rest. The Go shim reports at once and loses it.
    /// </remarks>
    public void OnExit(ChildExit exit)
    {
        if (Io is { } io && io.HoldsUnreadOutput())
        {
            _ = ExitWhenOutputReadAsync(io, exit);
            return;
        }
        ExitNow(exit);
    }

    private async Task ExitWhenOutputReadAsync(ProcessIo io, ChildExit exit)
    {
        try
        {
            await io.WaitOutputReadAsync(OutputReadIdleLimit).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            ShimLog.Warn("waiting for output to be read failed", ShimLog.Field("id", ContainerId) + " " + ShimLog.Field("error", ex.Message));
        }
        try
        {
            ExitNow(exit);
        }
        catch (Exception ex)
        {
            ShimLog.Error("delivering an exit failed", ShimLog.Field("id", ContainerId) + " " + ShimLog.Field("exec", ExecId) + " " + ShimLog.Field("error", ex.ToString()));
        }
    }

    private void ExitNow(ChildExit exit)
    {
        bool applied;
        lock (Gate)
        {
            if (_starting)
            {
                _stashedExit = exit;
                return;
            }
            applied = DeliverExit(exit);
        }
        if (applied)
        {
            AfterExit();
        }
    }

    /// <summary>Checks the state allows Start and holds back exits until <see cref="EndStart"/>.</summary>
    protected void BeginStart()
    {
        lock (Gate)
        {
            _state.CheckStart();
            _starting = true;
        }
    }

    /// <summary>Marks the process running, publishes its start event, then delivers an exit that came meanwhile.</summary>
    protected void EndStart(Google.Protobuf.IMessage startEvent)
    {
        bool applied = false;
        lock (Gate)
        {
            if (_state == CreatedState.Instance)
            {
                _state = RunningState.Instance;
            }
            Events.Publish(startEvent);
            applied = ReleaseStart();
        }
        if (applied)
        {
            AfterExit();
        }
    }

    /// <summary>Ends a failed start; an exit that came meanwhile is delivered.</summary>
    protected void AbortStart()
    {
        bool applied;
        lock (Gate)
        {
            applied = ReleaseStart();
        }
        if (applied)
        {
            AfterExit();
        }
    }

    /// <summary>Moves to <paramref name="next"/> if the current state is <paramref name="expected"/>.</summary>
    protected bool Transition(ProcessState expected, ProcessState next)
    {
        lock (Gate)
        {
            if (_state != expected)
            {
                return false;
            }
            _state = next;
            return true;
        }
    }

    /// <summary>Runs <paramref name="check"/> against the current state under the lock.</summary>
    protected ProcessState Check(Action<ProcessState> check)
    {
        lock (Gate)
        {
            check(_state);
            return _state;
        }
    }

    /// <summary>Sets the state (under the lock).</summary>
    protected void Become(ProcessState next)
    {
        lock (Gate)
        {
            _state = next;
        }
    }

    /// <summary>Called under the lock with a reaped exit; returns true if it was applied now (init may defer).</summary>
    protected virtual bool DeliverExit(ChildExit exit)
    {
        ApplyExit(exit);
        return true;
    }

    /// <summary>Called outside the lock after an exit was applied.</summary>
    protected virtual void AfterExit()
    {
    }

    /// <summary>Records the exit, publishes TaskExit and wakes waiters; call under the lock.</summary>
    protected void ApplyExit(ChildExit exit)
    {
        if (_state == DeletedState.Instance)
        {
            return; // runc delete of a created container killed it; nobody waits for that exit
        }
        _state = _state.OnExit();
        ExitStatus = exit.Status;
        ExitedAt = exit.ExitedAt;
        if (ShimLog.DebugEnabled)
        {
            ShimLog.Debug("process exited", ShimLog.Field("id", ContainerId) + " " + ShimLog.Field("exec", ExecId) + " " + ShimLog.Field("pid", Pid) + " " + ShimLog.Field("status", exit.Status));
        }
        Events.Publish(new TaskExit
        {
            ContainerId = ContainerId,
            Id = Id,
            Pid = (uint)Pid,
            ExitStatus = (uint)exit.Status,
            ExitedAt = Timestamps.From(exit.ExitedAt),
        });
        _exited.TrySetResult();
    }

    private bool ReleaseStart()
    {
        _starting = false;
        if (_stashedExit is { } exit)
        {
            _stashedExit = null;
            return DeliverExit(exit);
        }
        return false;
    }
}
