using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

namespace Shim.Os.Io;

/// <summary>One epoll thread shared by every stdio copy of the process (later also consoles and OOM eventfds).</summary>
/// <remarks>
/// Every fd is registered once, edge-triggered, for EPOLLIN|EPOLLOUT|EPOLLRDHUP, with all its
/// handlers fanned out from one entry (two pumps may share a destination). Handlers therefore
/// work until EAGAIN; a handler that stops early for fairness reschedules itself.
/// Fds epoll refuses (EPERM: regular files, /dev/null) are treated as always ready.
/// </remarks>
public sealed partial class IoLoop : IDisposable
{
    private const int MaxEvents = 64;
    private const uint GatherMicros = 200;
    private const long GatherBelowBytes = 16 * 1024;
    private static readonly long GatherWithinTicks = Stopwatch.Frequency / 2000;   // 500 µs

    private static readonly Lazy<IoLoop> SharedLoop = new(() => new IoLoop("io-loop"), LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly SafeFileHandle _epoll;
    private readonly SafeFileHandle _wake;
    private readonly int _epollFd;
    private readonly int _wakeFd;
    private readonly Thread _thread;
    private readonly ConcurrentQueue<Action> _commands = new();

    // Loop thread only.
    private readonly Dictionary<int, List<IoHandler>> _fds = [];
    private readonly HashSet<IoHandler> _active = [];
    private readonly Queue<IoHandler> _ready = new();
    private readonly List<IoHandler> _scratch = [];
    private long _movedThisPass;

    private volatile bool _disposed;

    /// <summary>A loop on a thread of its own; the shim shares one (<see cref="Shared"/>), tests make private ones.</summary>
    internal IoLoop(string threadName)
    {
        int epfd = Libc.epoll_create1(Libc.EPOLL_CLOEXEC);
        if (epfd < 0)
        {
            throw ErrnoException.FromLast("epoll_create1");
        }
        _epoll = new SafeFileHandle(epfd, ownsHandle: true);
        _epollFd = epfd;
        int wake = Libc.eventfd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (wake < 0)
        {
            var error = ErrnoException.FromLast("eventfd");
            _epoll.Dispose();
            throw error;
        }
        _wake = new SafeFileHandle(wake, ownsHandle: true);
        _wakeFd = wake;
        Ctl(Libc.EPOLL_CTL_ADD, _wakeFd, Libc.EPOLLIN | Libc.EPOLLET);
        _thread = new Thread(Run) { IsBackground = true, Name = threadName };
        _thread.Start();
    }

    /// <summary>The process-wide loop, started on first use on a thread named "io-loop".</summary>
    public static IoLoop Shared => SharedLoop.Value;

    /// <summary>Raised on the loop thread when a callback throws; the loop keeps running.</summary>
    public event Action<Exception>? CallbackFailed;

    internal bool OnLoopThread => Thread.CurrentThread == _thread;

    /// <summary>Copies source -> destination until EOF on source; never throws for I/O errors (they go into the result).</summary>
    /// <remarks>
    /// Both ends are switched to non-blocking where they support epoll. splice(2) is used when
    /// both are pipes/FIFOs, else read/write through one 64 KiB native buffer. A destination
    /// epoll refuses is written from a thread of the copy's own when it is a regular file (its
    /// filesystem may stall: see WriterThread), directly when it is a device such as /dev/null. If the destination fails (EPIPE, EIO...)
    /// the source keeps being drained and discarded (BytesDropped), so the writer never stalls.
    /// With closeDestinationAtEof the destination handle is disposed at EOF (stdin: the process must see EOF).
    /// A terminal source (pty master) that reads EIO has lost its last slave fd: that is its EOF.
    /// Cancelling <paramref name="cancel"/> stops a pump that has not finished: what it still held
    /// counts as dropped, both handles are released (the destination closed as at EOF) and the
    /// result carries ECANCELED. For a copy nobody will ever read again (its reader went away).
    /// </remarks>
    public Task<PumpResult> Pump(SafeHandle source, SafeHandle destination, bool closeDestinationAtEof) =>
        StartPump(source, destination, closeDestinationAtEof, CancellationToken.None).Completion;

    /// <summary><see cref="Pump"/> that <paramref name="cancel"/> stops (see there) and whose progress can be watched.</summary>
    /// <param name="progress">Called on the loop thread after each turn that moved bytes or reached the end (keep it short; cache the delegate).</param>
    public PumpHandle StartPump(SafeHandle source, SafeHandle destination, bool closeDestinationAtEof, CancellationToken cancel, Action? progress = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var pump = new PumpOperation(this, source, destination, closeDestinationAtEof, progress);
        Post(() => Begin(pump));
        if (cancel.CanBeCanceled)
        {
            // posted after Begin, so the abort always finds the pump started (or already done)
            var registration = cancel.Register(() => Post(() => pump.Abort(null)));
            pump.Completion.ContinueWith(_ => registration.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
        return new PumpHandle(pump);
    }

    /// <summary>Calls <paramref name="onReadable"/> on the loop thread when fd becomes readable (or hangs up / errors).</summary>
    /// <remarks>
    /// Edge-triggered: the fd is switched to non-blocking and the callback must read until
    /// EAGAIN (for an eventfd one read suffices). Dispose stops further calls; a call already
    /// running on the loop thread may still finish after Dispose returns on another thread.
    /// </remarks>
    [SuppressMessage("Design", "CA1031:Do not catch general exception types", Justification = "whatever Begin throws on the loop thread is handed to the caller of Watch through the completion, not lost on the loop")]
    public IDisposable Watch(SafeHandle fd, Action onReadable)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var watcher = new FdWatcher(this, fd, onReadable);
        if (OnLoopThread)
        {
            Begin(watcher);
            return watcher;
        }
        var registered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            try
            {
                Begin(watcher);
                registered.TrySetResult();
            }
            catch (Exception ex)
            {
                registered.TrySetException(ex);
            }
        });
        registered.Task.GetAwaiter().GetResult();
        return watcher;
    }

    /// <summary>Stops the loop thread; pumps still running complete with ECANCELED.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        Wake();
        if (!OnLoopThread)
        {
            _thread.Join();
            _epoll.Dispose();
            _wake.Dispose();
        }
    }

    /// <summary>Runs an action on the loop thread (after the current turn if already on it).</summary>
    internal void Post(Action action)
    {
        _commands.Enqueue(action);
        Wake();
    }

    /// <summary>Any thread: starts <paramref name="handler"/> on the loop thread (now if already there).</summary>
    internal void Add(IoHandler handler)
    {
        if (OnLoopThread)
        {
            Begin(handler);
        }
        else
        {
            Post(() => Begin(handler));
        }
    }

    /// <summary>Loop thread: asks for another turn of the handler without waiting for readiness.</summary>
    internal void Schedule(IoHandler handler)
    {
        if (!handler.Queued)
        {
            handler.Queued = true;
            _ready.Enqueue(handler);
        }
    }

    /// <summary>Loop thread: adds a handler for fd; false if epoll does not support the fd (EPERM), i.e. it is always ready.</summary>
    internal bool Register(int fd, IoHandler handler)
    {
        if (_fds.TryGetValue(fd, out var handlers))
        {
            handlers.Add(handler);
            return true;
        }
        if (!TryCtl(Libc.EPOLL_CTL_ADD, fd, Libc.EPOLLIN | Libc.EPOLLOUT | Libc.EPOLLRDHUP | Libc.EPOLLET, out int errno))
        {
            if (errno == Errno.EPERM)
            {
                return false;
            }
            throw new ErrnoException(errno, $"epoll_ctl add {fd}");
        }
        _fds[fd] = [handler];
        return true;
    }

    /// <summary>Loop thread: removes a handler for fd; the last one removes the fd from epoll.</summary>
    internal void Unregister(int fd, IoHandler handler)
    {
        if (!_fds.TryGetValue(fd, out var handlers) || !handlers.Remove(handler) || handlers.Count > 0)
        {
            return;
        }
        _fds.Remove(fd);
        TryCtl(Libc.EPOLL_CTL_DEL, fd, 0, out _);
    }

    /// <summary>Loop thread: the handler is finished and no longer needs Abort at shutdown.</summary>
    internal void Retire(IoHandler handler) => _active.Remove(handler);

    private void Begin(IoHandler handler)
    {
        if (_disposed)
        {
            handler.Abort(null);
            return;
        }
        _active.Add(handler);
        handler.Start();
    }

    private unsafe void Wake()
    {
        ulong one = 1;
        _ = Libc.write(_wakeFd, (byte*)&one, sizeof(ulong));
    }

    private unsafe void Ctl(int op, int fd, uint events)
    {
        if (!TryCtl(op, fd, events, out int errno))
        {
            throw new ErrnoException(errno, $"epoll_ctl {op} {fd}");
        }
    }

    private unsafe bool TryCtl(int op, int fd, uint events, out int errno)
    {
        byte* ev = stackalloc byte[16];
        new Span<byte>(ev, 16).Clear();
        *(uint*)ev = events;
        *(ulong*)(ev + Libc.EpollEventDataOffset) = (ulong)fd;
        if (Libc.epoll_ctl(_epollFd, op, fd, ev) < 0)
        {
            errno = Errno.Last;
            return false;
        }
        errno = 0;
        return true;
    }
}
