using Shim.Os;

namespace Shim.Core.Processes;

/// <summary>
/// One start of a process (create, start, exec, restore), from <see cref="ExitSequencer.BeginStart"/>
/// to <see cref="Commit"/>. Until then the process's exits are held, and with a router so are the
/// exits of pids not yet known. Disposing an attempt that was not committed ends both brackets
/// whatever step threw: nothing stays held, and a process the attempt had started (its pid was
/// tracked) is killed and its exit completes its Wait without a TaskExit, since no start event went
/// out (containerd's shim ends its brackets the same way, with a cleanup that always runs).
/// </summary>
internal sealed class StartAttempt : IDisposable
{
    private readonly ExitSequencer _sequencer;
    private ExitRouter? _router;   // set while the router keeps unknown pids' exits for this start
    private ChildExit? _early;     // the process's exit, reaped before its pid was tracked
    private bool _tracked;
    private bool _done;

    internal StartAttempt(ExitSequencer sequencer, ContainerProcess process, ExitRouter? router)
    {
        _sequencer = sequencer;
        Process = process;
        _router = router;
        router?.BeginStart();
    }

    /// <summary>The process being started.</summary>
    public ContainerProcess Process { get; }

    /// <summary>
    /// The new pid is known: from now on its exit goes to the process (an exit reaped before now is
    /// kept for <see cref="Commit"/>), and a later failure of this attempt kills it.
    /// </summary>
    public void Track(int pid)
    {
        var router = _router ?? throw new InvalidOperationException("this start tracks no new pid");
        _router = null;
        _early = router.Track(pid, Process);
        _tracked = true;
        if (_early is not null)
        {
            Process.DropPidFd(); // reaped before pidfd_open: it may name whoever took the pid since
        }
    }

    /// <summary>
    /// The start succeeded: the start event goes out (TaskStart or TaskExecStarted, or what
    /// <paramref name="announce"/> tells instead: create's TaskCreate), then an exit held for it.
    /// </summary>
    public void Commit(Action<Events.TaskEvents>? announce = null)
    {
        if (_router is not null)
        {
            throw new InvalidOperationException("a start that keeps unknown pids' exits must track its pid before it commits");
        }
        _done = true;
        _sequencer.Started(Process, announce);
        if (_early is { } exit)
        {
            _sequencer.Reaped(Process, exit);
        }
    }

    /// <summary>Ends an attempt that was not committed: the start failed.</summary>
    public void Dispose()
    {
        if (_done)
        {
            return;
        }
        _done = true;
        _router?.EndStart();
        _router = null;
        if (_tracked && _early is null)
        {
            Process.KillAbandoned();
        }
        _sequencer.StartFailed(Process, started: _tracked, _early);
    }
}
