using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Shim.Os.Io;
using Shim.Os.Tests.Support;

namespace Shim.Os.Tests;

/// <summary>
/// A pipe read into memory (<see cref="IoLoop.DrainAsync"/>, <see cref="IoLoop.ReadFirstAsync"/>) and a
/// buffer written into one (<see cref="IoLoop.FeedAsync"/>) on a loop of the class's own: what runc's
/// captured output and its input go through, holding no thread while they wait.
/// </summary>
public sealed class PipeCaptureTests : IDisposable
{
    private const int EPIPE = 32;
    private const int ECANCELED = 125;
    private const int Kib = 1024;

    private readonly IoLoop _loop = new("capture-test-loop");

    public void Dispose() => _loop.Dispose();

    [Fact]
    public async Task A_drain_returns_everything_written_once_the_writer_closes()
    {
        var (read, write) = Pipes.Create();
        var data = RandomNumberGenerator.GetBytes(1024 * Kib);   // sixteen pipe buffers: many turns and edges
        var drain = _loop.DrainAsync(read, 4 * 1024 * Kib, TestIo.Ct);
        var writer = Task.Run(() => WriteAndClose(write, data), TestIo.Ct);

        var result = await drain.WaitAsync(TestIo.Timeout, TestIo.Ct);

        Assert.Equal(data.Length, await writer.WaitAsync(TestIo.Timeout, TestIo.Ct));
        Assert.True(result.Complete, $"not complete: {result}");
        Assert.Equal(data, result.Data);
        Assert.True(read.IsClosed, "the drain closes the pipe it owns");
    }

    [Fact]
    public async Task A_drain_of_a_pipe_closed_without_a_byte_returns_nothing()
    {
        var (read, write) = Pipes.Create();
        write.Dispose();

        var result = await _loop.DrainAsync(read, 1, TestIo.Ct).WaitAsync(TestIo.Timeout, TestIo.Ct);

        Assert.True(result.Complete, $"not complete: {result}");
        Assert.Empty(result.Data);
    }

    [Fact]
    public async Task Output_of_exactly_the_limit_is_complete()
    {
        var (read, write) = Pipes.Create();
        var data = RandomNumberGenerator.GetBytes(64 * Kib + 7);
        var drain = _loop.DrainAsync(read, data.Length, TestIo.Ct);
        var writer = Task.Run(() => WriteAndClose(write, data), TestIo.Ct);

        var result = await drain.WaitAsync(TestIo.Timeout, TestIo.Ct);

        await writer.WaitAsync(TestIo.Timeout, TestIo.Ct);
        Assert.True(result.Complete, $"not complete: {result}");
        Assert.Equal(data, result.Data);
    }

    [Fact]
    public async Task Output_over_the_limit_keeps_the_limit_and_the_writer_gets_EPIPE_instead_of_blocking()
    {
        var (read, write) = Pipes.Create();
        var data = RandomNumberGenerator.GetBytes(1024 * Kib);
        const int limit = 100 * Kib;
        var drain = _loop.DrainAsync(read, limit, TestIo.Ct);
        var writer = Task.Run(() => WriteAndClose(write, data), TestIo.Ct);

        var result = await drain.WaitAsync(TestIo.Timeout, TestIo.Ct);

        Assert.True(result.Truncated, $"not truncated: {result}");
        Assert.False(result.Complete);
        Assert.Equal(data.AsSpan(0, limit).ToArray(), result.Data);
        // the pipe was closed at the limit: the rest of the writer's bytes fail instead of waiting for ever
        Assert.Equal(-EPIPE, await writer.WaitAsync(TestIo.Timeout, TestIo.Ct));
    }

    [Fact]
    public async Task A_drain_whose_writer_never_closes_ends_on_cancellation_with_what_it_read()
    {
        var (read, write) = Pipes.Create();
        using (write)
        {
            using var cancel = CancellationTokenSource.CreateLinkedTokenSource(TestIo.Ct);
            var drain = _loop.DrainAsync(read, 1024, cancel.Token);
            Assert.Equal(7, TestIo.Write(write, "partial"u8));
            await TestIo.PollUntilAsync(() => Pipes.Unread(read) == 0, "the loop took the bytes");   // the loop took the bytes; EOF never comes
            Assert.False(drain.IsCompleted);

            await cancel.CancelAsync();
            var result = await drain.WaitAsync(TestIo.Timeout, TestIo.Ct);

            Assert.True(result.Cancelled, $"not cancelled: {result}");
            Assert.Equal(ECANCELED, result.Errno);
            Assert.Equal("partial"u8.ToArray(), result.Data);
            Assert.True(read.IsClosed);
        }
    }

    [Fact]
    public async Task Reads_still_waiting_when_the_loop_stops_end_cancelled()
    {
        var loop = new IoLoop("capture-shutdown-loop");
        var (read, write) = Pipes.Create();
        using (write)
        {
            var drain = loop.DrainAsync(read, 1024, TestIo.Ct);
            loop.Dispose();

            var result = await drain.WaitAsync(TestIo.Timeout, TestIo.Ct);

            Assert.True(result.Cancelled, $"not cancelled: {result}");
        }
    }

    [Fact]
    public async Task Read_first_returns_at_the_first_bytes_without_waiting_for_the_end_of_file()
    {
        var (read, write) = Pipes.Create();
        using (write)
        {
            var first = _loop.ReadFirstAsync(read, 1, TestIo.Ct);
            Assert.False(first.IsCompleted);
            Assert.Equal(2, TestIo.Write(write, "xy"u8));

            var result = await first.WaitAsync(TestIo.Timeout, TestIo.Ct);

            Assert.Equal("x"u8.ToArray(), result.Data);
            Assert.Equal(0, result.Errno);
            Assert.True(read.IsClosed);
        }
    }

    [Fact]
    public async Task Read_first_of_a_pipe_closed_without_a_byte_returns_nothing_and_no_error()
    {
        var (read, write) = Pipes.Create();
        var first = _loop.ReadFirstAsync(read, 1, TestIo.Ct);
        write.Dispose();

        var result = await first.WaitAsync(TestIo.Timeout, TestIo.Ct);

        Assert.Empty(result.Data);
        Assert.Equal(0, result.Errno);
    }

    [Fact]
    public async Task A_feed_writes_everything_then_closes_the_pipe_so_the_reader_sees_the_end()
    {
        var (read, write) = Pipes.Create();
        using (read)
        {
            var data = RandomNumberGenerator.GetBytes(1024 * Kib);
            var feed = _loop.FeedAsync(write, data, TestIo.Ct);
            var received = await Task.Run(() => ReadToEnd(read), TestIo.Ct).WaitAsync(TestIo.Timeout, TestIo.Ct);

            var result = await feed.WaitAsync(TestIo.Timeout, TestIo.Ct);

            Assert.Equal(new FeedResult(data.Length, 0), result);
            Assert.Equal(data, received);
            Assert.True(write.IsClosed);
        }
    }

    [Fact]
    public async Task An_empty_feed_only_closes_the_pipe()
    {
        var (read, write) = Pipes.Create();
        using (read)
        {
            var result = await _loop.FeedAsync(write, ReadOnlyMemory<byte>.Empty, TestIo.Ct).WaitAsync(TestIo.Timeout, TestIo.Ct);

            Assert.Equal(new FeedResult(0, 0), result);
            Assert.Equal(0, TestIo.Read(read, new byte[1]));
        }
    }

    [Fact]
    public async Task A_child_that_exits_without_reading_its_input_ends_the_feed_with_EPIPE_and_no_exception()
    {
        var (read, write) = Pipes.Create();
        ChildProcess child;
        using (read)
        {
            child = Children.Sh("exit 3", new Dictionary<int, SafeHandle> { [0] = read });
        }
        var data = RandomNumberGenerator.GetBytes(1024 * Kib);   // more than the pipe holds: the feed must wait for a reader that never comes

        var result = await _loop.FeedAsync(write, data, TestIo.Ct).WaitAsync(TestIo.Timeout, TestIo.Ct);

        Assert.Equal(EPIPE, result.Errno);
        Assert.True(result.BytesWritten < data.Length, $"wrote {result.BytesWritten} of {data.Length}");
        Assert.Equal(3, (await child.Exited.WaitAsync(TestIo.Timeout, TestIo.Ct)).Status);
        Assert.True(write.IsClosed);
    }

    [Fact]
    public async Task A_feed_whose_reader_never_reads_ends_on_cancellation()
    {
        var (read, write) = Pipes.Create();
        using (read)
        {
            using var cancel = CancellationTokenSource.CreateLinkedTokenSource(TestIo.Ct);
            var feed = _loop.FeedAsync(write, new byte[1024 * Kib], cancel.Token);
            await TestIo.PollUntilAsync(() => Pipes.Unread(read) > 0, "the feed wrote into the pipe");
            Assert.False(feed.IsCompleted);

            await cancel.CancelAsync();
            var result = await feed.WaitAsync(TestIo.Timeout, TestIo.Ct);

            Assert.True(result.Cancelled, $"not cancelled: {result}");
            Assert.Equal(Pipes.Unread(read), result.BytesWritten);
        }
    }

    [Fact]
    public async Task A_hundred_reads_waiting_on_silent_pipes_leave_the_thread_pool_free()
    {
        var pipes = Enumerable.Range(0, 100).Select(_ => Pipes.Create()).ToList();
        try
        {
            var drains = pipes.Select(p => _loop.DrainAsync(p.Read, 1024, TestIo.Ct)).ToList();

            // nothing waits on a pool thread: a work item queued now runs at once, behind no blocked reader
            int pending = await Task.Factory.StartNew(() => drains.Count(d => !d.IsCompleted), TestIo.Ct, TaskCreationOptions.PreferFairness, TaskScheduler.Default)
                .WaitAsync(TestIo.Timeout, TestIo.Ct);
            Assert.Equal(100, pending);

            var feeds = pipes.Select(p => _loop.FeedAsync(p.Write, "done"u8.ToArray(), CancellationToken.None)).ToList();
            var results = await Task.WhenAll(drains).WaitAsync(TestIo.Timeout, TestIo.Ct);
            Assert.All(results, r => Assert.Equal("done"u8.ToArray(), r.Data));
            Assert.All(await Task.WhenAll(feeds).WaitAsync(TestIo.Timeout, TestIo.Ct), r => Assert.Equal(new FeedResult(4, 0), r));
        }
        finally
        {
            foreach (var (read, write) in pipes)
            {
                read.Dispose();
                write.Dispose();
            }
        }
    }

    /// <summary>Writes all of <paramref name="data"/> (blocking) then closes; the byte count, or -errno of the write that failed.</summary>
    private static int WriteAndClose(SafeFileHandle handle, byte[] data)
    {
        using (handle)
        {
            return TestIo.Write(handle, data);
        }
    }

    private static byte[] ReadToEnd(SafeFileHandle handle)
    {
        using var received = new MemoryStream();
        var buffer = new byte[64 * Kib];
        int n;
        while ((n = TestIo.Read(handle, buffer)) > 0)
        {
            received.Write(buffer, 0, n);
        }
        return received.ToArray();
    }

}
