using System.Diagnostics.CodeAnalysis;
using Shim.Core.Errors;
using Shim.Core.Events;
using Shim.Core.Logging;
using Shim.Os;

namespace Shim.Core.Processes;

/// <summary>
/// One per container: decides when each reaped exit of its processes is reported. A process's
/// TaskExit never precedes its start event (TaskCreate, TaskStart or TaskExecStarted); init's comes
/// after the exits of every exec started before it, after the container's OOM events, after the
/// rest of the container was killed when it has no pid namespace of its own, and once the client
/// has read the output left in the FIFOs (bounded). Nothing is called back under its lock; what is
/// published goes through <see cref="TaskEvents"/>.
/// </summary>
internal sealed class ExitSequencer
{
    private readonly Lock _gate = new();
    private readonly Action<ChildExit>? _beforeInitExit;
    private readonly HashSet<ContainerProcess> _starting = [];           // guarded by _gate: start event not out yet
    private readonly Dictionary<ContainerProcess, ChildExit> _held = []; // guarded by _gate: ready, held for the start event
    private readonly HashSet<ContainerProcess> _abandoned = [];          // guarded by _gate: started by a failed start, killed, exit not seen yet
    private int _liveExecs;                                              // guarded by _gate: execs starting or started, exit not reported
    private bool _initReaped;                                            // guarded by _gate: no exec may start any more
    private (ContainerProcess Init, ChildExit Exit)? _heldInit;          // guarded by _gate: ready, held for the execs

    /// <summary>Creates the sequencer of one container; <paramref name="beforeInitExit"/> runs right before init's TaskExit, given its exit (OOM drain).</summary>
    public ExitSequencer(TaskEvents events, ExitTiming? timing = null, Action<ChildExit>? beforeInitExit = null, ShimLogger? log = null)
    {
        Events = events;
        Log = log ?? ShimLogger.Discard;
        Timing = timing ?? ExitTiming.Default;
        _beforeInitExit = beforeInitExit;
    }

    /// <summary>What the container's processes tell containerd through.</summary>
    public TaskEvents Events { get; }

    /// <summary>The shim's log, for the container's processes too.</summary>
    public ShimLogger Log { get; }

    /// <summary>How long an exit waits for its output to be read.</summary>
    public ExitTiming Timing { get; }

    /// <summary>
    /// A start of <paramref name="process"/> begins: its exits are held until the attempt is committed or
    /// disposed, and with <paramref name="router"/>, the exits of pids not yet known too.
    /// </summary>
    /// <exception cref="ShimException">FailedPrecondition while a start of the same process is in flight, and for an exec once init has exited (the exec is then failed too).</exception>
    public StartAttempt BeginStart(ContainerProcess process, ExitRouter? router)
    {
        lock (_gate)
        {
            if (_starting.Contains(process))
            {
                throw new ShimException(ErrorKind.FailedPrecondition, $"cannot start {Describe(process)}: a start is already in progress");
            }
            if (process.IsInit || !_initReaped)
            {
                if (!process.IsInit)
                {
                    _liveExecs++;
                }
                _starting.Add(process);
                return new StartAttempt(this, process, router);
            }
        }
        process.FailStart();
        throw new ShimException(ErrorKind.FailedPrecondition, $"cannot start exec {process.ExecId} in container {process.ContainerId}: the init process has exited");
    }

    /// <summary>Publishes the start event, then reports an exit that was held for it.</summary>
    internal void Started(ContainerProcess process, Action<TaskEvents>? announce)
    {
        if (announce is null)
        {
            Events.Started(process);
        }
        else
        {
            announce(Events);
        }
        if (EndStart(process) is { } e)
        {
            Ready(process, e);
        }
    }

    /// <summary>
    /// A start failed. Nothing <paramref name="started"/>: an exit held meanwhile is reported (init was
    /// created before), an exec that never ran is failed (Wait answers). A process the attempt had
    /// started was killed: its exit, <paramref name="early"/> or held or still to come, is no news.
    /// </summary>
    internal void StartFailed(ContainerProcess process, bool started, ChildExit? early)
    {
        var held = EndStart(process) ?? early;
        if (!started)
        {
            if (held is { } e)
            {
                Ready(process, e);
            }
            else if (!process.IsInit)
            {
                process.FailStart();
                ExecReported();
            }
            return;
        }
        if (!process.IsInit)
        {
            process.FailStart();
        }
        if (held is { } exit)
        {
            Abandoned(process, exit);
            return;
        }
        lock (_gate)
        {
            _abandoned.Add(process);
        }
    }

    /// <summary>
    /// A tracked process was reaped (from the exit loop, or replayed by a start): prepares its report
    /// (init: kill the rest, resume), waits for its output to be read, then reports in order. Never blocks.
    /// </summary>
    public void Reaped(ContainerProcess process, ChildExit exit)
    {
        process.MarkReaped();
        bool abandoned;
        lock (_gate)
        {
            abandoned = _abandoned.Remove(process);
            if (!abandoned && process.IsInit)
            {
                _initReaped = true;
            }
        }
        if (abandoned)
        {
            Abandoned(process, exit);
            return;
        }
        var prepared = process.PrepareExitAsync();
        if (prepared.IsCompletedSuccessfully && !(process.Io?.HoldsUnreadOutput() ?? false))
        {
            Ready(process, exit);
            return;
        }
        _ = ReadyWhenPreparedAsync(process, exit, prepared);
    }

    [SuppressMessage("Design", "CA1031:Do not catch general exception types", Justification = "runs unobserved off the exit loop: whatever fails in one step is logged and the exit is still reported, or containerd would wait for it for ever")]
    private async Task ReadyWhenPreparedAsync(ContainerProcess process, ChildExit exit, Task prepared)
    {
        try
        {
            await prepared.ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Log.Warn("preparing an exit report failed", Fields(process) + " " + ShimLog.Field("error", ex.Message));
        }
        try
        {
            // ctr closes its FIFOs as soon as it sees the exit and would lose what it has not read
            // (containerd's shim reports at once and loses it); bounded, so moving output cannot hold the exit
            if (process.Io is { } io && io.HoldsUnreadOutput())
            {
                await io.WaitOutputReadAsync(Timing.OutputReadIdleLimit, Timing.OutputReadLimit).ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            Log.Warn("waiting for output to be read failed", Fields(process) + " " + ShimLog.Field("error", ex.Message));
        }
        try
        {
            Ready(process, exit);
        }
        catch (Exception ex)
        {
            Log.Error("reporting an exit failed", Fields(process) + " " + ShimLog.Field("error", ex.ToString()));
        }
    }

    private void Ready(ContainerProcess process, ChildExit exit)
    {
        lock (_gate)
        {
            if (_starting.Contains(process))
            {
                _held[process] = exit;
                return;
            }
            if (process.IsInit && _liveExecs > 0)
            {
                // containerd relies on init's exit coming after its execs' (as containerd's shim holds it in handleInitExit)
                _heldInit = (process, exit);
                return;
            }
        }
        Report(process, exit);
    }

    private void Report(ContainerProcess process, ChildExit exit)
    {
        if (process.IsInit)
        {
            _beforeInitExit?.Invoke(exit);
        }
        if (process.RecordExit(exit))
        {
            Events.Exited(process);
        }
        process.CompleteExit();
        if (!process.IsInit)
        {
            ExecReported();
        }
    }

    /// <summary>The exit of a process its failed start killed: recorded for Wait, never published.</summary>
    private void Abandoned(ContainerProcess process, ChildExit exit)
    {
        process.RecordExit(exit);
        process.CompleteExit();
        if (!process.IsInit)
        {
            ExecReported();
        }
    }

    private void ExecReported()
    {
        (ContainerProcess Init, ChildExit Exit)? release = null;
        lock (_gate)
        {
            if (--_liveExecs == 0 && _heldInit is { } held)
            {
                _heldInit = null;
                release = held;
            }
        }
        if (release is { } r)
        {
            Report(r.Init, r.Exit);
        }
    }

    /// <summary>Ends the start of <paramref name="process"/>; returns the exit held for it meanwhile, if any.</summary>
    private ChildExit? EndStart(ContainerProcess process)
    {
        lock (_gate)
        {
            _starting.Remove(process);
            return _held.Remove(process, out var exit) ? exit : null;
        }
    }

    private static string Describe(ContainerProcess process) =>
        process.IsInit ? $"container {process.ContainerId}" : $"exec {process.ExecId} in container {process.ContainerId}";

    /// <summary>The id and exec log fields of <paramref name="process"/>.</summary>
    internal static string Fields(ContainerProcess process) =>
        ShimLog.Field("id", process.ContainerId) + " " + ShimLog.Field("exec", process.ExecId);
}

/// <summary>How long an exit waits for the client to read what its process left in the FIFOs.</summary>
/// <param name="OutputReadIdleLimit">With nothing moving, this long.</param>
/// <param name="OutputReadLimit">At most, even while output moves.</param>
internal sealed record ExitTiming(TimeSpan OutputReadIdleLimit, TimeSpan OutputReadLimit)
{
    /// <summary>1 s idle, 3 s overall.</summary>
    public static readonly ExitTiming Default = new(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3));
}
