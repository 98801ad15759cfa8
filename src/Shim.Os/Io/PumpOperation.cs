using System.Runtime.InteropServices;
using Shim.Os.Interop;
using Shim.Os.Terminals;

namespace Shim.Os.Io;

/// <summary>One source → destination copy, a state machine driven by readiness on the loop thread.</summary>
internal sealed unsafe class PumpOperation : IoHandler
{
    private const int BufferSize = 64 * 1024;
    private const int SpliceChunk = 1024 * 1024;
    private const int OperationsPerTurn = 32;
    internal const int ECANCELED = 125;

    // A chunk handed to the writer thread (Shim.Os.Io.WriterThread): the loop thread and the
    // writer agree through one compare-and-swap who releases the buffer and the destination
    // when the pump finishes while the chunk is still being written.
    private const int NoWrite = 0;
    private const int Writing = 1;
    private const int Landed = 2;
    private const int Abandoned = 3;

    private readonly IoLoop _loop;
    private readonly SafeHandle _source;
    private readonly SafeHandle _destination;
    private readonly bool _closeDestinationAtEof;
    private readonly Action? _progress;
    private readonly int _sourceFd;
    private readonly int _destinationFd;
    private readonly TaskCompletionSource<PumpResult> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private bool _sourceRegistered;
    private bool _destinationRegistered;
    private bool _splice;
    private bool _destinationFailed;
    private int _destinationErrno;
    private byte* _buffer;
    private int _pendingOffset;
    private int _pendingLength;
    private long _copied;
    private long _dropped;
    private bool _done;
    private bool _offLoop;
    private WriterThread? _writer;
    private int _write;

    internal PumpOperation(IoLoop loop, SafeHandle source, SafeHandle destination, bool closeDestinationAtEof, Action? progress = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        _loop = loop;
        _source = source;
        _destination = destination;
        _closeDestinationAtEof = closeDestinationAtEof;
        _progress = progress;
        // Hold both handles until the pump is done, so a caller disposing early cannot get the fd
        // number closed (and reused) under an epoll registration.
        bool added = false;
        source.DangerousAddRef(ref added);
        try
        {
            added = false;
            destination.DangerousAddRef(ref added);
        }
        catch
        {
            source.DangerousRelease();
            throw;
        }
        _sourceFd = (int)source.DangerousGetHandle();
        _destinationFd = (int)destination.DangerousGetHandle();
    }

    internal Task<PumpResult> Completion => _completion.Task;

    /// <summary>Bytes delivered so far (written on the loop thread, read from any).</summary>
    internal long Copied => Volatile.Read(ref _copied);

    internal override void Start()
    {
        try
        {
            _sourceRegistered = _loop.Register(_sourceFd, this);
            if (_sourceRegistered)
            {
                Fds.SetNonBlocking(_source, true);
            }
            _destinationRegistered = _loop.Register(_destinationFd, this);
            if (_destinationRegistered)
            {
                Fds.SetNonBlocking(_destination, true);
            }
            _splice = _sourceRegistered && _destinationRegistered
                && Fds.FileType(_source) == Libc.S_IFIFO && Fds.FileType(_destination) == Libc.S_IFIFO;
            // A destination epoll refuses is a regular file (or /dev/null, which never blocks):
            // a file's writes may block for as long as its filesystem does, so they leave the loop.
            _offLoop = !_destinationRegistered && Fds.FileType(_destination) != Libc.S_IFCHR;
        }
        catch (ErrnoException ex)
        {
            Finish(ex.Errno);
            return;
        }
        _loop.Schedule(this);   // data may already be waiting; do not rely on the initial edge
    }

    internal override void OnEvents(uint events)
    {
        if (_done)
        {
            return;
        }
        long before = _copied;
        Turn();
        if (_progress is not null && (_copied != before || _done))
        {
            _progress();   // once per turn that moved bytes or ended the copy, not per syscall
        }
    }

    private void Turn()
    {
        for (int budget = OperationsPerTurn; budget > 0; budget--)
        {
            if (_pendingLength > 0 && !(_offLoop ? FlushOffLoop() : FlushPending()))
            {
                return;   // destination full: its EPOLLOUT edge (or the writer thread's completion) resumes us
            }
            if (_splice && !_destinationFailed)
            {
                if (!SpliceOnce())
                {
                    return;
                }
            }
            else if (!ReadOnce())
            {
                return;
            }
        }
        _loop.Schedule(this);   // turn used up: let other pumps run, then carry on
    }

    internal override void Abort(Exception? error)
    {
        if (!_done)
        {
            _dropped += _pendingLength;
            _pendingLength = 0;
            Finish(error is ErrnoException e ? e.Errno : error is null ? ECANCELED : Errno.EIO, error);
        }
    }

    /// <summary>One splice; false when the pump must wait (EAGAIN) or is finished.</summary>
    private bool SpliceOnce()
    {
        nint n = Libc.splice(_sourceFd, 0, _destinationFd, 0, SpliceChunk, Libc.SPLICE_F_NONBLOCK | Libc.SPLICE_F_MOVE);
        if (n > 0)
        {
            Volatile.Write(ref _copied, _copied + n);
            _loop.NoteMoved(n);
            return true;
        }
        if (n == 0)
        {
            Finish(0);
            return false;
        }
        int errno = Errno.Last;
        switch (errno)
        {
            case Errno.EINTR:
                return true;
            case Errno.EAGAIN:
                return false;   // source empty or destination full: an edge on either resumes us
            case Errno.EPIPE:
                FailDestination(errno);
                return true;
            default:
                // splice does not say which side failed; read/write will.
                _splice = false;
                return true;
        }
    }

    /// <summary>One read; false when the pump must wait (EAGAIN) or is finished.</summary>
    private bool ReadOnce()
    {
        if (_buffer == null)
        {
            _buffer = (byte*)NativeMemory.Alloc(BufferSize);
        }
        nint n = Libc.read(_sourceFd, _buffer, BufferSize);
        if (n > 0)
        {
            if (_destinationFailed)
            {
                _dropped += n;
            }
            else
            {
                _pendingOffset = 0;
                _pendingLength = (int)n;
            }
            return true;
        }
        if (n == 0)
        {
            Finish(0);
            return false;
        }
        int errno = Errno.Last;
        if (errno == Errno.EINTR)
        {
            return true;
        }
        if (errno == Errno.EIO && Terminal.IsTerminal(_sourceFd))
        {
            // A pty master reads EIO, never 0, once the last slave fd is closed (the process and
            // everything that inherited its terminal are gone). The kernel flushes the slave's
            // pending output before it reports EIO, so all output has been read: this is the
            // terminal's end of file, not a failure.
            Finish(0);
            return false;
        }
        if (errno != Errno.EAGAIN)
        {
            Finish(errno);
        }
        return false;
    }

    /// <summary>Writes the buffered chunk; false if the destination would block.</summary>
    private bool FlushPending()
    {
        while (_pendingLength > 0)
        {
            nint n = Libc.write(_destinationFd, _buffer + _pendingOffset, (nuint)_pendingLength);
            if (n > 0)
            {
                Volatile.Write(ref _copied, _copied + n);
                _loop.NoteMoved(n);
                _pendingOffset += (int)n;
                _pendingLength -= (int)n;
                continue;
            }
            int errno = n == 0 ? Errno.EIO : Errno.Last;
            if (errno == Errno.EINTR)
            {
                continue;
            }
            if (errno == Errno.EAGAIN)
            {
                if (!_destinationRegistered)
                {
                    _loop.Schedule(this);   // no readiness to wait for; retry next turn
                }
                return false;
            }
            FailDestination(errno);
            _dropped += _pendingLength;
            _pendingLength = 0;
        }
        return true;
    }

    /// <summary>Hands the buffered chunk to the writer thread; true once it has landed (or failed).</summary>
    private bool FlushOffLoop()
    {
        int write = Volatile.Read(ref _write);
        if (write == Writing)
        {
            return false;   // the writer's completion schedules the next turn
        }
        if (write == Landed)
        {
            _write = NoWrite;
            var (written, errno) = _writer!.TakeResult();
            Volatile.Write(ref _copied, _copied + written);
            _loop.NoteMoved(written);
            _pendingOffset += written;
            _pendingLength -= written;
            if (errno != 0)
            {
                FailDestination(errno);
                _dropped += _pendingLength;
                _pendingLength = 0;
            }
            return _pendingLength == 0;
        }
        _writer ??= new WriterThread(_destinationFd, OnChunkWritten);
        Volatile.Write(ref _write, Writing);
        _writer.Submit(_buffer + _pendingOffset, _pendingLength);
        return false;
    }

    /// <summary>Writer thread: a chunk returned; resume the pump on the loop, or clean up after one that already finished.</summary>
    private void OnChunkWritten()
    {
        if (Interlocked.CompareExchange(ref _write, Landed, Writing) == Writing)
        {
            _loop.Post(() => _loop.Schedule(this));
        }
        else
        {
            ReleaseDestinationSide();   // Abandoned: Finish left the buffer and the destination to us
        }
    }

    private void FailDestination(int errno)
    {
        _destinationFailed = true;
        if (_destinationErrno == 0)
        {
            _destinationErrno = errno;
        }
        if (_destinationRegistered)
        {
            _loop.Unregister(_destinationFd, this);
            _destinationRegistered = false;
        }
    }

    private void Finish(int errno, Exception? error = null)
    {
        _done = true;
        if (_sourceRegistered)
        {
            _loop.Unregister(_sourceFd, this);
            _sourceRegistered = false;
        }
        if (_destinationRegistered)
        {
            _loop.Unregister(_destinationFd, this);
            _destinationRegistered = false;
        }
        _loop.Retire(this);
        _source.DangerousRelease();
        _writer?.Stop();
        if (Interlocked.CompareExchange(ref _write, Abandoned, Writing) != Writing)
        {
            ReleaseDestinationSide();
        }
        // else a chunk is still being written (a stalled file): the writer thread releases the
        // buffer and the destination when it returns, and the copy ends now
        var result = new PumpResult(_copied, _dropped, errno != 0 ? errno : _destinationErrno);
        if (error is not null && error is not ErrnoException)
        {
            _completion.TrySetException(error);
        }
        else
        {
            _completion.TrySetResult(result);
        }
    }

    private void ReleaseDestinationSide()
    {
        if (_buffer != null)
        {
            NativeMemory.Free(_buffer);
            _buffer = null;
        }
        _destination.DangerousRelease();
        if (_closeDestinationAtEof)
        {
            _destination.Dispose();
        }
    }
}
