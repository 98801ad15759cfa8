using Containerd.Events;
using Shim.Core.Errors;
using Shim.Core.Events;
using Shim.Core.Logging;
using Shim.Core.Stdio;
using Shim.Os;
using Shim.Protos;
using Shim.Runc;

namespace Shim.Core.Processes;

/// <summary>A container's init process: its state, exit and stdio. The process owns the lock; the state decides.</summary>
public sealed class InitProcess : IExitTarget
{
    private static readonly TimeSpan OutputDrainTimeout = TimeSpan.FromSeconds(10);

    private readonly Lock _gate = new();
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly IEventPublisher _events;
    private InitState _state = CreatedState.Instance; // guarded by _gate
    private bool _starting;                            // guarded by _gate: exits wait until the start event is out
    private ChildExit? _stashedExit;                   // guarded by _gate

    /// <summary>Creates the record of a process runc has just created.</summary>
    public InitProcess(string containerId, int pid, StdioPaths stdio, ProcessIo io, RuncClient runc, IEventPublisher events)
    {
        ContainerId = containerId;
        Pid = pid;
        Stdio = stdio;
        Io = io;
        Runc = runc;
        _events = events;
    }

    /// <summary>The container (and process) id.</summary>
    public string ContainerId { get; }

    /// <summary>The init pid in the host's pid namespace.</summary>
    public int Pid { get; }

    /// <summary>Stdio as requested at Create.</summary>
    public StdioPaths Stdio { get; }

    /// <summary>The shim side of the stdio.</summary>
    public ProcessIo Io { get; }

    /// <summary>runc for this container.</summary>
    public RuncClient Runc { get; }

    /// <summary>Exit code (or 128+signal) once stopped.</summary>
    public int ExitStatus { get; private set; }

    /// <summary>When the exit was reaped; default while running.</summary>
    public DateTimeOffset ExitedAt { get; private set; }

    /// <summary>Completes when the process has exited.</summary>
    public Task Exited => _exited.Task;

    /// <summary>Runs once, under the process lock, right after the exit was recorded and TaskExit queued.</summary>
    public Action<InitProcess>? ExitHook { get; set; }

    /// <summary>The current state.</summary>
    public InitState State
    {
        get
        {
            lock (_gate)
            {
                return _state;
            }
        }
    }

    /// <summary>runc start; publishes TaskStart before any TaskExit of this process.</summary>
    public async Task StartAsync(CancellationToken ct)
    {
        lock (_gate)
        {
            _state.CheckStart();
            _starting = true;
        }
        try
        {
            await Runc.StartAsync(ContainerId, ct).ConfigureAwait(false);
        }
        catch
        {
            lock (_gate)
            {
                _starting = false;
                ReplayStashedExit();
            }
            throw;
        }
        lock (_gate)
        {
            if (_state == CreatedState.Instance)
            {
                _state = RunningState.Instance;
            }
            _events.Publish(new TaskStart { ContainerId = ContainerId, Pid = (uint)Pid });
            _starting = false;
            ReplayStashedExit();
        }
    }

    /// <inheritdoc />
    public void OnExit(ChildExit exit)
    {
        lock (_gate)
        {
            if (_starting)
            {
                _stashedExit = exit;
                return;
            }
            ApplyExit(exit);
        }
    }

    /// <summary>Sends a signal through runc kill.</summary>
    public async Task KillAsync(uint signal, bool all, CancellationToken ct)
    {
        lock (_gate)
        {
            _state.CheckKill();
        }
        try
        {
            await Runc.KillAsync(ContainerId, (int)signal, all, ct).ConfigureAwait(false);
        }
        catch (RuncException ex) when (ex.IsNotFound)
        {
            throw new ShimException(ErrorKind.NotFound, $"runc kill {ContainerId}: process already finished ({ex.RuncMessage})", ex);
        }
    }

    /// <summary>Deletes the runc container after the process stopped (or was never started).</summary>
    public async Task DeleteAsync(CancellationToken ct)
    {
        bool stopped;
        lock (_gate)
        {
            _state.CheckDelete();
            stopped = _state == StoppedState.Instance;
        }
        if (stopped)
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
        Io.Dispose();
        lock (_gate)
        {
            _state = DeletedState.Instance;
        }
    }

    /// <summary>Waits for the exit.</summary>
    public Task WaitAsync(CancellationToken ct) => _exited.Task.WaitAsync(ct);

    /// <summary>Drops the shim's stdin writer.</summary>
    public void CloseStdin() => Io.CloseStdin();

    private void ReplayStashedExit()
    {
        if (_stashedExit is { } exit)
        {
            _stashedExit = null;
            ApplyExit(exit);
        }
    }

    private void ApplyExit(ChildExit exit)
    {
        if (_state == DeletedState.Instance)
        {
            return; // runc delete of a created container killed it; nobody waits for that exit
        }
        _state = _state.OnExit();
        ExitStatus = exit.Status;
        ExitedAt = exit.ExitedAt;
        ShimLog.Debug("init process exited", ShimLog.Field("id", ContainerId) + " " + ShimLog.Field("pid", Pid) + " " + ShimLog.Field("status", exit.Status));
        _events.Publish(new TaskExit
        {
            ContainerId = ContainerId,
            Id = ContainerId,
            Pid = (uint)Pid,
            ExitStatus = (uint)exit.Status,
            ExitedAt = Timestamps.From(exit.ExitedAt),
        });
        ExitHook?.Invoke(this);
        _exited.TrySetResult();
    }
}
