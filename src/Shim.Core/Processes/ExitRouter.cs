using Shim.Os;

namespace Shim.Core.Processes;

/// <summary>
/// Routes reaped exits to tracked processes. A process's pid is only known once runc has created
/// or exec'd it, and it may already have exited by then: while any start is in flight, exits of
/// unknown pids are kept, and <see cref="Track"/> hands back the one that belongs to the new pid.
/// </summary>
public sealed class ExitRouter
{
    private readonly Lock _gate = new();
    private readonly Dictionary<int, IExitTarget> _targets = []; // guarded by _gate
    private readonly List<ChildExit> _unclaimed = [];              // guarded by _gate
    private int _startsInFlight;                                   // guarded by _gate

    /// <summary>Pids whose exits are routed now, and exits kept for starts in flight (tests check both are pruned).</summary>
    internal (int Tracked, int Unclaimed) Counts
    {
        get
        {
            lock (_gate)
            {
                return (_targets.Count, _unclaimed.Count);
            }
        }
    }

    /// <summary>Starts that keep unknown pids' exits now (tests check none is left behind).</summary>
    internal int StartsInFlight
    {
        get
        {
            lock (_gate)
            {
                return _startsInFlight;
            }
        }
    }

    /// <summary>Pins unknown-pid exits until the matching <see cref="Track"/> or <see cref="EndStart"/>.</summary>
    public void BeginStart()
    {
        lock (_gate)
        {
            _startsInFlight++;
        }
    }

    /// <summary>Ends a start that failed before a pid was known.</summary>
    public void EndStart()
    {
        lock (_gate)
        {
            Release();
        }
    }

    /// <summary>
    /// Ends a start with the new pid: from now on its exit goes to <paramref name="target"/>. If the
    /// process already exited, that exit is returned instead, for the caller to deliver after its start event.
    /// </summary>
    internal ChildExit? Track(int pid, IExitTarget target)
    {
        lock (_gate)
        {
            int i = _unclaimed.FindIndex(e => e.Pid == pid);
            ChildExit? early = null;
            if (i >= 0)
            {
                early = _unclaimed[i];
                _unclaimed.RemoveAt(i);
            }
            else
            {
                _targets[pid] = target;
            }
            Release();
            return early;
        }
    }

    /// <summary>Stops routing exits of <paramref name="pid"/> (process deleted).</summary>
    public void Forget(int pid)
    {
        lock (_gate)
        {
            _targets.Remove(pid);
        }
    }

    /// <summary>Delivers one reaped exit; called by the exit loop for every child of the shim.</summary>
    public void Dispatch(ChildExit exit)
    {
        IExitTarget? target;
        lock (_gate)
        {
            if (!_targets.Remove(exit.Pid, out target))
            {
                if (_startsInFlight > 0)
                {
                    _unclaimed.Add(exit);
                }
                return;
            }
        }
        target.OnExit(exit);
    }

    /// <summary>Runs the exit loop over a reaper subscription until it completes or <paramref name="ct"/> fires.</summary>
    public async Task RunAsync(ExitSubscription exits, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(exits);
        try
        {
            while (await exits.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                while (exits.Reader.TryRead(out var exit))
                {
                    Dispatch(exit);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private void Release()
    {
        if (--_startsInFlight == 0)
        {
            _unclaimed.Clear(); // exits of runc itself and of strangers: nobody waits for them
        }
    }
}
