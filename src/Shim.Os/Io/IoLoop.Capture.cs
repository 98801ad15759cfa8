using System.Runtime.InteropServices;

namespace Shim.Os.Io;

/// <summary>Reading a pipe into memory and writing a buffer into one, without a thread waiting on either.</summary>
public sealed partial class IoLoop
{
    /// <summary>Reads <paramref name="source"/> until end of file, keeping at most <paramref name="limit"/> bytes.</summary>
    /// <remarks>
    /// The loop owns <paramref name="source"/> from here and closes it when the read ends: at end of
    /// file; as soon as the source offers more than <paramref name="limit"/> bytes (Truncated, with
    /// the first <paramref name="limit"/> kept; a writer that goes on gets EPIPE); on
    /// <paramref name="cancel"/> or loop shutdown (ECANCELED, with what was read so far); or on a
    /// read error (its errno). Never faults for I/O errors.
    /// </remarks>
    public Task<CaptureResult> DrainAsync(SafeHandle source, int limit, CancellationToken cancel)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var operation = new CaptureOperation(this, source, limit, toEnd: true);
        return Launch(operation, operation.Completion, cancel);
    }

    /// <summary>Waits until <paramref name="source"/> is readable and reads once: up to <paramref name="limit"/> bytes, none at end of file.</summary>
    /// <remarks>Owns and closes <paramref name="source"/> and ends as <see cref="DrainAsync"/> does, but after the first read that returns data.</remarks>
    public Task<CaptureResult> ReadFirstAsync(SafeHandle source, int limit, CancellationToken cancel)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var operation = new CaptureOperation(this, source, limit, toEnd: false);
        return Launch(operation, operation.Completion, cancel);
    }

    /// <summary>Writes all of <paramref name="data"/> into <paramref name="destination"/>, then closes it (its reader sees end of file).</summary>
    /// <remarks>
    /// The loop owns <paramref name="destination"/> from here. A reader that goes away first ends the
    /// feed with EPIPE (no exception, no signal); <paramref name="cancel"/> or loop shutdown ends it
    /// with ECANCELED. <paramref name="data"/> must stay unchanged until the task completes.
    /// </remarks>
    public Task<FeedResult> FeedAsync(SafeHandle destination, ReadOnlyMemory<byte> data, CancellationToken cancel)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var operation = new FeedOperation(this, destination, data);
        return Launch(operation, operation.Completion, cancel);
    }

    /// <summary>Starts <paramref name="operation"/> on the loop; <paramref name="cancel"/> aborts it there (posted after its start, so it always finds it started or done).</summary>
    private Task<T> Launch<T>(IoHandler operation, Task<T> completion, CancellationToken cancel)
    {
        Add(operation);
        if (cancel.CanBeCanceled)
        {
            var registration = cancel.UnsafeRegister(static state =>
            {
                var (loop, handler) = ((IoLoop, IoHandler))state!;
                loop.Post(() => handler.Abort(null));
            }, (this, operation));
            completion.ContinueWith(static (_, state) => ((CancellationTokenRegistration)state!).Dispose(), registration,
                CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
        return completion;
    }
}
