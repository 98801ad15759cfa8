using Shim.Os.Interop;

namespace Shim.Os;

/// <summary>The one reaper of this process: makes it a child subreaper, runs one dedicated thread that reaps every child (ours and re-parented orphans) and publishes each exit.</summary>
public sealed class Reaper
{
    // How long the reaper sleeps without children before looking again, in case a child was
    // started behind its back (Spawner.Spawn used directly) and so never woke it.
    private const int IdleRecheckMs = 1000;

    private readonly TimeProvider _time;

    // Guards _pending, _subscriptions, _spawnGeneration and _thread. Spawn holds it across
    // posix_spawn + registration, and the reaper holds it across wait4 + dispatch, so an exit
    // can never be dispatched before its pid is registered.
    private readonly object _lock = new();
    private readonly Dictionary<int, TaskCompletionSource<ChildExit>> _pending = [];
    private ExitSubscription[] _subscriptions = [];
    private long _spawnGeneration;
    private Thread? _thread;

    internal Reaper(TimeProvider time) => _time = time;

    /// <summary>The process-wide reaper.</summary>
    public static Reaper Instance { get; } = new(TimeProvider.System);

    /// <summary>Marks this process a child subreaper and starts the reaping thread; idempotent.</summary>
    public void Start()
    {
        lock (_lock)
        {
            if (_thread is not null)
            {
                return;
            }
            ProcessInfo.SetChildSubreaper();
            _thread = new Thread(Loop) { IsBackground = true, Name = "reaper" };
            _thread.Start();
        }
    }

    /// <summary>
    /// Makes the calling thread the reaping thread (saving a thread in a long-lived process): marks
    /// the process a subreaper, runs <paramref name="started"/>, then reaps forever.
    /// </summary>
    public void RunOnCurrentThread(Action started)
    {
        ArgumentNullException.ThrowIfNull(started);
        lock (_lock)
        {
            if (_thread is not null)
            {
                throw new InvalidOperationException("the reaper is already running");
            }
            ProcessInfo.SetChildSubreaper();
            _thread = Thread.CurrentThread;
        }
        started();
        Loop();
    }

    /// <summary>Spawns under the reaper's lock, so the exit can never be published before the returned Task is registered.</summary>
    public ChildProcess Spawn(SpawnOptions options)
    {
        Start();
        lock (_lock)
        {
            int pid = Spawner.Spawn(options);
            var exited = new TaskCompletionSource<ChildExit>(TaskCreationOptions.RunContinuationsAsynchronously);
            _pending[pid] = exited;
            _spawnGeneration++;
            Monitor.PulseAll(_lock);   // wake the reaper if it is idle with no children
            return new ChildProcess(pid, exited.Task);
        }
    }

    /// <summary>Every exit reaped after this call is delivered to the subscription (unbounded, in reap order), including exits of children spawned via Spawn.</summary>
    public ExitSubscription Subscribe()
    {
        var subscription = new ExitSubscription(this);
        lock (_lock)
        {
            _subscriptions = [.. _subscriptions, subscription];
        }
        return subscription;
    }

    internal void Unsubscribe(ExitSubscription subscription)
    {
        lock (_lock)
        {
            _subscriptions = Array.FindAll(_subscriptions, s => !ReferenceEquals(s, subscription));
        }
    }

    /// <summary>
    /// kill(2) by pid, for a process no pidfd could be opened for (EMFILE, or a kernel before
    /// 5.3): sent only while the pid is still an unreaped child of this process, checked under the
    /// lock every reap holds, so the number cannot have been reaped and handed to a stranger
    /// meanwhile. A zombie still counts (the signal is then a no-op, as a pidfd's would be).
    /// </summary>
    /// <returns>False when the pid is no child of ours (reaped already) or kill failed with ESRCH.</returns>
    public unsafe bool SignalChild(int pid, int signal)
    {
        if (pid <= 0)
        {
            return false;
        }
        byte* info = stackalloc byte[Libc.SiginfoSize];
        lock (_lock)
        {
            int rc;
            do
            {
                rc = Libc.waitid(Libc.P_PID, pid, info, Libc.WEXITED | Libc.WNOHANG | Libc.WNOWAIT);
            }
            while (rc < 0 && Errno.Last == Errno.EINTR);
            return rc == 0 && Signals.Kill(pid, signal);   // ECHILD: not (or no longer) our child
        }
    }

    private unsafe void Loop()
    {
        byte* info = stackalloc byte[Libc.SiginfoSize];
        while (true)
        {
            long generation = Interlocked.Read(ref _spawnGeneration);
            new Span<byte>(info, Libc.SiginfoSize).Clear();
            // WNOWAIT leaves the zombie in place, so its pid cannot be recycled by a concurrent
            // Spawn until we reap it under the lock.
            int rc = Libc.waitid(Libc.P_ALL, 0, info, Libc.WEXITED | Libc.WNOWAIT);
            if (rc < 0)
            {
                int errno = Errno.Last;
                if (errno == Errno.ECHILD)
                {
                    WaitForChildren(generation);
                }
                else if (errno != Errno.EINTR)
                {
                    Thread.Sleep(100);   // unexpected; never spin
                }
                continue;
            }
            int pid = *(int*)(info + Libc.SiginfoPidOffset);
            if (pid > 0)
            {
                Reap(pid);
            }
        }
    }

    private void WaitForChildren(long seenGeneration)
    {
        lock (_lock)
        {
            if (_spawnGeneration == seenGeneration)
            {
                Monitor.Wait(_lock, IdleRecheckMs);
            }
        }
    }

    private void Reap(int pid)
    {
        lock (_lock)
        {
            int rc;
            int status;
            // WNOHANG: if someone else reaped this pid meanwhile and it was reused, never block
            // here while holding the lock.
            do
            {
                rc = Libc.wait4(pid, out status, Libc.WNOHANG, 0);
            }
            while (rc < 0 && Errno.Last == Errno.EINTR);
            if (rc != pid)
            {
                return;
            }

            var exit = new ChildExit(pid, WaitStatus.ToExitCode(status), _time.GetUtcNow());
            // Subscriptions first: whoever observes Exited can then Drain() and find the exit.
            foreach (var subscription in _subscriptions)
            {
                subscription.Publish(exit);
            }
            if (_pending.Remove(pid, out var exited))
            {
                exited.TrySetResult(exit);
            }
        }
    }
}
