using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

namespace Shim.Os.Io;

/// <summary>
/// A connected, non-blocking unix stream socket whose waits are driven by an <see cref="IoLoop"/>
/// instead of the .NET socket engine (no extra thread). Reads and writes are tried at once on the
/// calling thread and only wait for readiness after EAGAIN. One read and one write may be pending
/// at a time. Failures throw <see cref="IOException"/>; use after <see cref="Close"/>
/// <see cref="ObjectDisposedException"/>; a reset by the peer reads as end of stream.
/// </summary>
public sealed class LoopSocket : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly SocketWatch _watch;
    private int _closed;

    /// <summary>Takes ownership of a connected socket; switches it to non-blocking and registers it on <paramref name="loop"/>.</summary>
    public LoopSocket(IoLoop loop, SafeFileHandle connected)
    {
        ArgumentNullException.ThrowIfNull(loop);
        ArgumentNullException.ThrowIfNull(connected);
        Fds.SetNonBlocking(connected, true);
        _handle = connected;
        _watch = new SocketWatch(loop, connected);
    }

    private LoopSocket(SafeFileHandle nonBlocking, IoLoop loop)
    {
        _handle = nonBlocking;
        _watch = new SocketWatch(loop, nonBlocking);
    }

    /// <summary>Connects to the unix socket at <paramref name="path"/>; failures (ENOENT, ECONNREFUSED, EAGAIN when the backlog is full) throw <see cref="IOException"/>.</summary>
    public static async ValueTask<LoopSocket> ConnectAsync(IoLoop loop, string path, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(loop);
        ct.ThrowIfCancellationRequested();
        var socket = new LoopSocket(UnixSockets.Create(), loop);
        try
        {
            int seen = socket._watch.Write.Sequence;
            if (!socket.StartConnect(path))
            {
                // EINPROGRESS: the outcome is reported as writability, then in SO_ERROR.
                using (ct.UnsafeRegister(Readiness.CancelCallback, socket._watch.Write))
                {
                    if (!await socket._watch.Write.WaitAsync(seen, ct).ConfigureAwait(false))
                    {
                        throw socket.Interrupted(ct);
                    }
                }
                int error = socket.SocketError();
                if (error != 0)
                {
                    throw Failure(error, $"connect {path}");
                }
            }
            return socket;
        }
        catch
        {
            socket.Close();
            throw;
        }
    }

    /// <summary>SO_PEERCRED: the peer's pid, uid and gid as of connect.</summary>
    public (int Pid, int Uid, int Gid) PeerCredentials() => ProcessInfo.PeerCredentials(_handle);

    /// <summary>Receives up to <paramref name="buffer"/>.Length bytes; 0 at end of stream (or reset).</summary>
    public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct)
    {
        if (ct.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<int>(ct);
        }
        int seen = _watch.Read.Sequence;
        int n = TryReceive(buffer.Span);
        return n >= 0 ? new ValueTask<int>(n) : ReceiveSlowAsync(buffer, seen, ct);
    }

    /// <summary>Sends all of <paramref name="buffer"/>; a peer that left gives <see cref="IOException"/> (EPIPE, ECONNRESET), never SIGPIPE.</summary>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct)
    {
        if (ct.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(ct);
        }
        int seen = _watch.Write.Sequence;
        int sent = TrySend(buffer.Span);
        return sent == buffer.Length ? ValueTask.CompletedTask : SendSlowAsync(buffer[sent..], seen, ct);
    }

    /// <summary>Shuts both directions down (the peer sees end of stream at once), fails pending operations and closes the fd. Idempotent.</summary>
    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }
        bool added = false;
        try
        {
            _handle.DangerousAddRef(ref added);
            _ = Libc.shutdown(_watch.Fd, Libc.SHUT_RDWR);
        }
        catch (ObjectDisposedException)
        {
        }
        finally
        {
            if (added)
            {
                _handle.DangerousRelease();
            }
        }
        _watch.Stop();
        // The fd closes once the loop has unregistered it and no syscall holds a reference.
        _handle.Dispose();
    }

    /// <inheritdoc cref="Close" />
    public void Dispose() => Close();

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ReceiveSlowAsync(Memory<byte> buffer, int seen, CancellationToken ct)
    {
        var readiness = _watch.Read;
        using var cancel = ct.UnsafeRegister(Readiness.CancelCallback, readiness);
        while (true)
        {
            if (!await readiness.WaitAsync(seen, ct).ConfigureAwait(false))
            {
                throw Interrupted(ct);
            }
            seen = readiness.Sequence;
            int n = TryReceive(buffer.Span);
            if (n >= 0)
            {
                return n;
            }
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendSlowAsync(ReadOnlyMemory<byte> buffer, int seen, CancellationToken ct)
    {
        var readiness = _watch.Write;
        using var cancel = ct.UnsafeRegister(Readiness.CancelCallback, readiness);
        while (!buffer.IsEmpty)
        {
            if (!await readiness.WaitAsync(seen, ct).ConfigureAwait(false))
            {
                throw Interrupted(ct);
            }
            seen = readiness.Sequence;
            buffer = buffer[TrySend(buffer.Span)..];
        }
    }

    /// <summary>Bytes received (0 = end of stream), or -1 when nothing is there yet.</summary>
    private unsafe int TryReceive(Span<byte> buffer)
    {
        bool added = false;
        try
        {
            AddRef(ref added);
            fixed (byte* p = buffer)
            {
                while (true)
                {
                    nint n = Libc.recv(_watch.Fd, p, (nuint)buffer.Length, 0);
                    if (n >= 0)
                    {
                        return (int)n;
                    }
                    int errno = Errno.Last;
                    switch (errno)
                    {
                        case Errno.EINTR:
                            continue;
                        case Errno.EAGAIN:
                            return -1;
                        case Errno.ECONNRESET:
                            return 0;   // the peer closed with data unread: it is gone, like EOF
                        default:
                            throw Failure(errno, "recv");
                    }
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

    /// <summary>Bytes sent before the socket buffer filled up (EAGAIN).</summary>
    private unsafe int TrySend(ReadOnlySpan<byte> buffer)
    {
        bool added = false;
        try
        {
            AddRef(ref added);
            int total = 0;
            fixed (byte* p = buffer)
            {
                while (total < buffer.Length)
                {
                    nint n = Libc.send(_watch.Fd, p + total, (nuint)(buffer.Length - total), Libc.MSG_NOSIGNAL);
                    if (n >= 0)
                    {
                        total += (int)n;
                        continue;
                    }
                    int errno = Errno.Last;
                    if (errno == Errno.EINTR)
                    {
                        continue;
                    }
                    if (errno == Errno.EAGAIN)
                    {
                        break;
                    }
                    throw Failure(errno, "send");
                }
            }
            return total;
        }
        finally
        {
            if (added)
            {
                _handle.DangerousRelease();
            }
        }
    }

    /// <summary>connect(2); true when connected at once, false when in progress.</summary>
    private unsafe bool StartConnect(string path)
    {
        byte* address = stackalloc byte[Libc.SockaddrUnSize];
        uint length = UnixSockets.Address(path, address);
        while (true)
        {
            if (Libc.connect(_watch.Fd, address, length) == 0)
            {
                return true;
            }
            int errno = Errno.Last;
            if (errno == Errno.EINTR)
            {
                continue;
            }
            if (errno == Errno.EINPROGRESS)
            {
                return false;
            }
            throw Failure(errno, $"connect {path}");
        }
    }

    private unsafe int SocketError()
    {
        int error = 0;
        uint length = sizeof(int);
        if (Libc.getsockopt(_watch.Fd, Libc.SOL_SOCKET, Libc.SO_ERROR, (byte*)&error, &length) < 0)
        {
            return Errno.Last;
        }
        return error;
    }

    private void AddRef(ref bool added)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _closed) != 0, this);
        _handle.DangerousAddRef(ref added);
    }

    private Exception Interrupted(CancellationToken ct) =>
        ct.IsCancellationRequested ? new OperationCanceledException(ct) : new ObjectDisposedException(nameof(LoopSocket));

    internal static IOException Failure(int errno, string operation)
    {
        var error = new ErrnoException(errno, operation);
        return new IOException(error.Message, error);
    }
}
