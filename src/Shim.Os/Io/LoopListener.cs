using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

namespace Shim.Os.Io;

/// <summary>
/// A listening unix stream socket whose accepts wait on an <see cref="IoLoop"/> (no .NET socket
/// engine thread). One accept may be pending at a time. Accepted sockets are non-blocking and close-on-exec.
/// </summary>
public sealed class LoopListener : IDisposable
{
    private readonly IoLoop _loop;
    private readonly SafeFileHandle _handle;
    private readonly SocketWatch _watch;
    private int _closed;

    /// <summary>Takes ownership of an already bound and listening socket (e.g. fd 3 from the start action).</summary>
    public LoopListener(IoLoop loop, SafeFileHandle listening)
    {
        ArgumentNullException.ThrowIfNull(loop);
        ArgumentNullException.ThrowIfNull(listening);
        Fds.SetNonBlocking(listening, true);
        _loop = loop;
        _handle = listening;
        _watch = new SocketWatch(loop, listening);
    }

    /// <summary>The path the socket is bound to (getsockname); null for an unnamed or abstract one.</summary>
    public string? LocalPath => UnixSockets.LocalPath(_handle);

    /// <summary>Binds a new socket at <paramref name="path"/> and listens; the file stays until the caller removes it.</summary>
    public static LoopListener Bind(IoLoop loop, string path, int backlog = 128)
    {
        ArgumentNullException.ThrowIfNull(loop);
        var handle = UnixSockets.TryBindListen(path, backlog, out int errno, out string failedCall)
            ?? throw LoopSocket.Failure(errno, $"{failedCall} {path}");
        return new LoopListener(loop, handle);
    }

    /// <summary>
    /// Waits for the next connection. <see cref="ObjectDisposedException"/> once disposed;
    /// <see cref="IOException"/> for failures such as EMFILE (worth retrying after a pause).
    /// </summary>
    [SuppressMessage("Reliability", "CA2000:Dispose objects before losing scope", Justification = "the accepted socket is returned: the caller owns it")]
    public ValueTask<LoopSocket> AcceptAsync(CancellationToken ct)
    {
        if (ct.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<LoopSocket>(ct);
        }
        int seen = _watch.Read.Sequence;
        var accepted = TryAccept();
        return accepted is not null ? new ValueTask<LoopSocket>(accepted) : AcceptSlowAsync(seen, ct);
    }

    /// <summary>Closes the listening socket; a pending accept fails with <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }
        _watch.Stop();
        _handle.Dispose();
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    [SuppressMessage("Reliability", "CA2000:Dispose objects before losing scope", Justification = "the accepted socket is returned: the caller owns it")]
    private async ValueTask<LoopSocket> AcceptSlowAsync(int seen, CancellationToken ct)
    {
        var readiness = _watch.Read;
        using var cancel = ct.UnsafeRegister(Readiness.CancelCallback, readiness);
        while (true)
        {
            if (!await readiness.WaitAsync(seen, ct).ConfigureAwait(false))
            {
                throw ct.IsCancellationRequested ? new OperationCanceledException(ct) : new ObjectDisposedException(nameof(LoopListener));
            }
            seen = readiness.Sequence;
            if (TryAccept() is { } accepted)
            {
                return accepted;
            }
        }
    }

    /// <summary>The next queued connection, or null when none is waiting.</summary>
    private unsafe LoopSocket? TryAccept()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _closed) != 0, this);
        bool added = false;
        try
        {
            _handle.DangerousAddRef(ref added);
            while (true)
            {
                int fd = Libc.accept4(_watch.Fd, null, null, Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC);
                if (fd >= 0)
                {
                    FdLimit.Observe(fd);
                    // if the watch fails (epoll_ctl: ENOMEM, ENOSPC), the connection closes now, not at finalization
                    SafeFileHandle? connected = new(fd, ownsHandle: true);
                    try
                    {
                        var socket = new LoopSocket(_loop, connected);
                        connected = null;
                        return socket;
                    }
                    finally
                    {
                        connected?.Dispose();
                    }
                }
                int errno = Errno.Last;
                switch (errno)
                {
                    case Errno.EINTR:
                    case Errno.ECONNABORTED:
                        continue;   // a signal, or a client that gave up while queued: try the next one
                    case Errno.EAGAIN:
                        return null;
                    default:
                        throw LoopSocket.Failure(errno, "accept4");
                }
            }
        }
        finally
        {
            if (added)
            {
                _handle.DangerousRelease();
            }
        }
    }
}
