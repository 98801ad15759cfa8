using System.Runtime.InteropServices;
using Shim.Os.Interop;

namespace Shim.Os.Io;

/// <summary>
/// One pipe end worked in steps on the loop thread until done (<see cref="CaptureOperation"/>,
/// <see cref="FeedOperation"/>): registered non-blocking, a first turn scheduled at once (data or
/// room may be there already), a bounded number of steps per turn so other handlers get theirs,
/// and one way to end, whichever way it comes (a step, a failed start, an abort).
/// </summary>
internal abstract class PipeOperation(IoLoop loop, SafeHandle handle) : FdRegistration(loop, handle)
{
    private const int StepsPerTurn = 32;

    /// <summary>False for an fd epoll refuses: such a step that would wait reschedules itself.</summary>
    protected bool Pollable { get; private set; }

    /// <summary>Set by <see cref="End"/>; no step runs after it.</summary>
    protected bool Done { get; private set; }

    internal sealed override void Start()
    {
        try
        {
            Fds.SetNonBlocking(Handle, true);
            Pollable = Register();
        }
        catch (ErrnoException ex)
        {
            End(ex.Errno, null);
            return;
        }
        catch (ObjectDisposedException)
        {
            End(Errno.EBADF, null);   // the owner closed it before the loop got to it
            return;
        }
        Loop.Schedule(this);
    }

    internal sealed override void OnEvents(uint events)
    {
        if (Done)
        {
            return;
        }
        for (int budget = StepsPerTurn; budget > 0; budget--)
        {
            if (!Step())
            {
                return;
            }
        }
        Loop.Schedule(this);   // turn used up: let other handlers run, then carry on
    }

    internal sealed override void Abort(Exception? error)
    {
        if (!Done)
        {
            End(error is ErrnoException e ? e.Errno : error is null ? Errno.ECANCELED : Errno.EIO, error);
        }
    }

    /// <summary>One read or write; false when it must wait for readiness or the operation ended.</summary>
    protected abstract bool Step();

    /// <summary>A read or write that returned -1: true to step again (EINTR), false to wait for readiness (EAGAIN) or because it ended the operation.</summary>
    protected bool Failed(int errno)
    {
        if (errno == Errno.EINTR)
        {
            return true;
        }
        if (errno == Errno.EAGAIN)
        {
            if (!Pollable)
            {
                Loop.Schedule(this);   // no readiness to wait for; retry next turn
            }
            return false;
        }
        End(errno, null);
        return false;
    }

    /// <summary>Ends the operation (0 = done, else the errno that stopped it); <paramref name="error"/> is a non-I/O failure.</summary>
    protected void End(int errno, Exception? error)
    {
        Done = true;
        Completed(errno, error);
    }

    /// <summary>Releases what the operation holds and completes its task.</summary>
    protected abstract void Completed(int errno, Exception? error);
}
