using System.Diagnostics.CodeAnalysis;
using Shim.Core.Events;
using Shim.Core.Logging;
using Shim.Core.Stdio;
using Shim.Os;

namespace Shim.Core.Processes;

/// <summary>
/// What init and exec processes share: state, stdio, pidfd and exit record. The process owns the
/// lock; the state decides; when an exit is reported is its container's <see cref="ExitSequencer"/>'s call.
/// </summary>
[SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable", Justification = "see _operations: the semaphore holds no OS resource")]
internal abstract class ContainerProcess : IExitTarget
{
    /// <summary>Exit status of an exec whose start failed (it never ran; runc exec exits 255 on failure too).</summary>
    internal const int FailedStartStatus = 255;

    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    [SuppressMessage("Usage", "CA2213:Disposable fields should be disposed", Justification = "a SemaphoreSlim holds no OS resource unless its AvailableWaitHandle is read, which nothing does; disposing it could fail an operation still waiting")]
    private readonly SemaphoreSlim _operations = new(1, 1); // one operation at a time (never the exit path)
    private ProcessState _state;                           // guarded by Gate
    private PidFd? _pidfd;                                 // guarded by Gate
    private Reaper? _byPid;                                // guarded by Gate: set when no pidfd could be opened
    private ProcessIo? _io;                                // guarded by Gate (read without it: a reference read is atomic)
    private bool _stdinClosed;                             // guarded by Gate: CloseIO came, whenever that was
    private (uint Width, uint Height)? _window;            // guarded by Gate: the last ResizePty, whenever it came
    private volatile bool _reaped;                         // the exit was reaped; its report may still be held

    /// <summary>Creates the record of a process of container <paramref name="containerId"/>.</summary>
    private protected ContainerProcess(string containerId, string execId, StdioPaths stdio, ExitSequencer sequencer, ProcessState initial)
    {
        ContainerId = containerId;
        ExecId = execId;
        Stdio = stdio;
        Sequencer = sequencer;
        _state = initial;
    }

    /// <summary>Guards the state and the pidfd.</summary>
    protected Lock Gate { get; } = new();

    /// <summary>What this process tells containerd through.</summary>
    internal TaskEvents Events => Sequencer.Events;

    /// <summary>Orders this process's exit among its container's events.</summary>
    internal ExitSequencer Sequencer { get; }

    /// <summary>The container id.</summary>
    public string ContainerId { get; }

    /// <summary>The exec id; empty for init.</summary>
    public string ExecId { get; }

    /// <summary>True for the container's init process.</summary>
    internal bool IsInit => ExecId.Length == 0;

    /// <summary>The process id containerd uses: the exec id, or the container id for init.</summary>
    public string Id => ExecId.Length > 0 ? ExecId : ContainerId;

    /// <summary>Host pid; 0 before the process was started.</summary>
    public int Pid { get; private set; }

    /// <summary>Stdio as requested.</summary>
    public StdioPaths Stdio { get; }

    /// <summary>The shim side of the stdio, from the moment a start opened it (before runc runs) until a failed start or delete closes it.</summary>
    public ProcessIo? Io => Volatile.Read(ref _io);

    /// <summary>Exit code (or 128+signal) once stopped.</summary>
    public int ExitStatus { get; private set; }

    /// <summary>When the exit was reaped; default while running.</summary>
    public DateTimeOffset ExitedAt { get; private set; }

    /// <summary>Completes when the process has exited (or its start failed for good).</summary>
    public Task Exited => _exited.Task;

    /// <summary>The current state; it performs or refuses every operation.</summary>
    internal ProcessState CurrentState
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

    /// <summary>How long a Delete waits for the report of an exit already reaped (see <see cref="ReportedExitAsync"/>).</summary>
    internal static readonly TimeSpan ReportPatience = TimeSpan.FromSeconds(10);

    /// <summary>The sequencer has the exit of this process: it is gone, whenever its exit is reported.</summary>
    internal void MarkReaped() => _reaped = true;

    /// <summary>
    /// For a Delete: when the process has exited but its exit is not reported yet (held, bounded, until
    /// the client read its output, or behind its execs' exits), waits for the report, so the Delete
    /// finds it stopped instead of refusing a process that is gone. containerd 1.7 and later delete the
    /// task of a shim that lists no pids as they load after a restart ("cleaning leaked shim process",
    /// core/runtime/v2/shim_load.go in 2.x) and leave the shim, its cgroup and runc's state behind when
    /// that Delete fails. containerd's own shim waits in its delete for the output copies too (2 s in
    /// 1.6, 10 s in 2.x: process/init.go), as long as this wait at most.
    /// </summary>
    internal async Task ReportedExitAsync(CancellationToken ct)
    {
        if (!_reaped || _exited.Task.IsCompleted)
        {
            return;
        }
        try
        {
            await _exited.Task.WaitAsync(ReportPatience, ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // still held: the state answers, as it would have
        }
    }

    /// <summary>
    /// CloseIO: drops the shim's stdin writer so the process sees EOF once the client closes too.
    /// Kept when it comes before or during Start and applied as soon as the stdio is open: ctr and
    /// nerdctl call CloseIO the moment their stdin ends, which for a short pipe is while runc exec runs.
    /// </summary>
    public void CloseStdin()
    {
        lock (Gate)
        {
            _stdinClosed = true;
            _io?.CloseStdin();
        }
    }

    /// <summary>
    /// ResizePty: sets the terminal's window size; kept when it comes before the console is there
    /// and applied once it arrives (under the lock, so the last size asked for is the one that stays).
    /// </summary>
    public void Resize(uint width, uint height)
    {
        lock (Gate)
        {
            _window = (width, height);
            _io?.Resize(width, height);
        }
    }

    /// <summary>Waits for this process's turn: operations on one process run one at a time, in arrival order (as containerd's shim holds the process mutex).</summary>
    internal async ValueTask<Turn> TurnAsync(CancellationToken ct)
    {
        await _operations.WaitAsync(ct).ConfigureAwait(false);
        return new Turn(_operations);
    }

    /// <summary>Ends an operation's turn when disposed.</summary>
    internal readonly struct Turn(SemaphoreSlim operations) : IDisposable
    {
        /// <inheritdoc />
        public void Dispose() => operations.Release();
    }

    /// <summary>Delete waits for the output copies as long as they move; this long without a byte moving, nobody reads them.</summary>
    protected static readonly TimeSpan OutputDrainTimeout = TimeSpan.FromSeconds(10);

    /// <inheritdoc />
    void IExitTarget.OnExit(ChildExit reaped) => Sequencer.Reaped(this, reaped);

    /// <summary>A start opened the stdio (runc has not run yet): a CloseIO that came first is applied now.</summary>
    internal void AttachIo(ProcessIo io)
    {
        lock (Gate)
        {
            _io = io;
            if (_stdinClosed)
            {
                io.CloseStdin();
            }
        }
    }

    /// <summary>The console arrived: the last window size asked for so far is applied.</summary>
    internal void ApplyWindow()
    {
        lock (Gate)
        {
            if (_window is { } w)
            {
                _io?.Resize(w.Width, w.Height);
            }
        }
    }

    /// <summary>A start failed: its stdio is closed.</summary>
    internal void DetachIo()
    {
        ProcessIo? io;
        lock (Gate)
        {
            io = _io;
            _io = null;
        }
        io?.Dispose();
    }

    /// <summary>The process is running: its pid and pidfd (null when it could not be opened or the process already exited).</summary>
    /// <param name="pid">The pid runc reported.</param>
    /// <param name="pidfd">The process's pidfd, or null.</param>
    /// <param name="byPid">Without a pidfd, signals go by pid through the reaper, which sends them only while the pid is its unreaped child (as containerd's shim signals by pid).</param>
    internal void Attach(int pid, PidFd? pidfd, Reaper? byPid = null)
    {
        Pid = pid;
        lock (Gate)
        {
            _pidfd = pidfd;
            _byPid = pidfd is null ? byPid : null;
        }
    }

    /// <summary>Closes the pidfd: the process was reaped before it was opened, or it is deleted.</summary>
    internal void DropPidFd()
    {
        PidFd? pidfd;
        lock (Gate)
        {
            pidfd = _pidfd;
            _pidfd = null;
            _byPid = null;
        }
        pidfd?.Dispose();
    }

    /// <summary>Sends a signal through the pidfd (or by pid while it is the shim's unreaped child): false when the process has exited (its pid may belong to another by now).</summary>
    protected bool SignalProcess(int signal)
    {
        PidFd? pidfd;
        Reaper? byPid;
        lock (Gate)
        {
            pidfd = _pidfd;
            byPid = _byPid;
        }
        try
        {
            return pidfd is not null ? pidfd.Signal(signal) : byPid is not null && byPid.SignalChild(Pid, signal);
        }
        catch (ObjectDisposedException)
        {
            return false; // deleted meanwhile
        }
    }

    /// <summary>Runs after the process was reaped and before its exit is reported (init: kill the rest, resume).</summary>
    internal virtual Task PrepareExitAsync() => Task.CompletedTask;

    /// <summary>
    /// Records the exit and moves to the state an exit leaves (the sequencer calls it in order,
    /// outside any lock): true when that is news to tell containerd, false when the process was
    /// deleted meanwhile (runc delete of a created container kills it) or never ran.
    /// </summary>
    internal bool RecordExit(ChildExit exit)
    {
        lock (Gate)
        {
            if (_state.OnExit() is not { } next)
            {
                return false;
            }
            MoveLocked(_state, next);
            ExitStatus = exit.Status;
            ExitedAt = exit.ExitedAt;
        }
        if (Sequencer.Log.DebugEnabled)
        {
            Sequencer.Log.Debug("process exited", ShimLog.Field("id", ContainerId) + " " + ShimLog.Field("exec", ExecId) + " " + ShimLog.Field("pid", Pid) + " " + ShimLog.Field("status", exit.Status));
        }
        return true;
    }

    /// <summary>Ends the exit: runs <see cref="AfterExit"/>, then wakes the waiters.</summary>
    internal void CompleteExit()
    {
        AfterExit();
        _exited.TrySetResult();
    }

    /// <summary>
    /// An exec that will never run (its start failed): CREATED (its start failed), as containerd's shim
    /// leaves it (containerd's TestIssue10589 checks it), with <see cref="FailedStartStatus"/>, no
    /// TaskExit, and Wait answers.
    /// </summary>
    internal void FailStart()
    {
        lock (Gate)
        {
            if (_state != ExecState.Created)
            {
                return;
            }
            MoveLocked(_state, ExecState.StartFailed);
            ExitStatus = FailedStartStatus;
            ExitedAt = DateTimeOffset.UtcNow;
        }
        _exited.TrySetResult();
    }

    /// <summary>A start that failed after runc had started the process kills it (through its pidfd: the pid may be reaped and reused by now).</summary>
    internal void KillAbandoned()
    {
        if (!SignalProcess(Signals.SIGKILL))
        {
            Sequencer.Log.Warn("a failed start could not kill the process it had started (no pidfd, or it is gone)", ExitSequencer.Fields(this) + " " + ShimLog.Field("pid", Pid));
        }
    }

    /// <summary>Runs once the exit was recorded (and published), before waiters wake (init records its exit in the bundle).</summary>
    protected virtual void AfterExit()
    {
    }

    /// <summary>
    /// The one checked move: from <paramref name="from"/> to <paramref name="to"/>, under the lock;
    /// false, and no move, when the state is no longer <paramref name="from"/> (an exit came first).
    /// </summary>
    /// <exception cref="InvalidOperationException">The graph has no such edge: a bug, never a client's doing.</exception>
    internal bool Move(ProcessState from, ProcessState to)
    {
        lock (Gate)
        {
            if (_state != from)
            {
                return false;
            }
            MoveLocked(from, to);
            return true;
        }
    }

    /// <summary>The checked move from whatever the state is now (delete: an exit may have moved a created process to stopped meanwhile).</summary>
    internal void Move(ProcessState to)
    {
        lock (Gate)
        {
            MoveLocked(_state, to);
        }
    }

    private void MoveLocked(ProcessState from, ProcessState to)
    {
        if (!from.MayMoveTo(to))
        {
            throw new InvalidOperationException($"{(IsInit ? "init" : "exec")} {Id} of {ContainerId} cannot move from {from.Name} to {to.Name}");
        }
        _state = to;
    }

    /// <summary>Puts the process in <paramref name="state"/> unchecked: the starting point of a table test, never used by the shim.</summary>
    internal void StartTestIn(ProcessState state)
    {
        lock (Gate)
        {
            _state = state;
        }
    }

    /// <summary>Waits, bounded, for the output copies of a stopped process to finish.</summary>
    internal Task DrainOutputAsync() => Io is { } io ? io.WaitOutputAsync(OutputDrainTimeout) : Task.CompletedTask;

    /// <summary>Closes the stdio and the pidfd of a process being deleted.</summary>
    protected void Release()
    {
        DetachIo();
        DropPidFd();
    }
}
