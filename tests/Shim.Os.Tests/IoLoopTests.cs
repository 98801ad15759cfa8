using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Shim.Os.Tests.Support;
using Shim.Os.Io;

namespace Shim.Os.Tests;

public sealed class IoLoopTests
{
    private const int EPIPE = 32;
    private const int Mib = 1024 * 1024;

    [Fact]
    public async Task Pumping_64_MiB_from_pipe_to_pipe_is_bit_exact()
    {
        var (sourceRead, sourceWrite) = Pipes.Create();
        var (destinationRead, destinationWrite) = Pipes.Create();
        using (sourceRead)
        using (destinationRead)
        {
            var pump = IoLoop.Shared.Pump(sourceRead, destinationWrite, closeDestinationAtEof: true);
            var written = Task.Run(() => TestIo.WriteRandom(sourceWrite, 64 * Mib), TestIo.Ct);
            var read = Task.Run(() => TestIo.HashToEnd(destinationRead), TestIo.Ct);

            var result = await pump.WaitAsync(TestIo.Timeout, TestIo.Ct);
            Assert.Equal(await written, await read.WaitAsync(TestIo.Timeout, TestIo.Ct));
            Assert.Equal(new PumpResult(64 * Mib, 0, 0), result);
            Assert.True(destinationWrite.IsClosed);
        }
    }

    [Fact]
    public async Task Pumping_64_MiB_from_pipe_to_fifo_is_bit_exact()
    {
        using var dir = TestIo.CreateTempDir();
        string fifo = dir.Combine("out");
        Fifos.Create(fifo);
#pragma warning disable CA2000 // the pump owns its destination and closes it at EOF or cancel
        var output = Fifos.OpenOutput(fifo);
#pragma warning restore CA2000
        using var consumer = Fds.Open(fifo, Fds.O_RDONLY);
        var (sourceRead, sourceWrite) = Pipes.Create();
        using (sourceRead)
        {
            var pump = IoLoop.Shared.Pump(sourceRead, output, closeDestinationAtEof: true);
            var written = Task.Run(() => TestIo.WriteRandom(sourceWrite, 64 * Mib), TestIo.Ct);
            var read = Task.Run(() => TestIo.HashToEnd(consumer), TestIo.Ct);

            var result = await pump.WaitAsync(TestIo.Timeout, TestIo.Ct);
            Assert.Equal(await written, await read.WaitAsync(TestIo.Timeout, TestIo.Ct));
            Assert.Equal(new PumpResult(64 * Mib, 0, 0), result);
        }
    }

    [Fact]
    public async Task Pumping_into_a_regular_file_writes_it_directly()
    {
        using var dir = TestIo.CreateTempDir();
        string file = dir.Combine("log");
#pragma warning disable CA2000 // the pump owns its destination and closes it at EOF or cancel
        var destination = Fds.Open(file, Fds.O_WRONLY | Fds.O_CREAT | Fds.O_TRUNC, 0x1A4);
#pragma warning restore CA2000
        var (sourceRead, sourceWrite) = Pipes.Create();
        using (sourceRead)
        {
            var pump = IoLoop.Shared.Pump(sourceRead, destination, closeDestinationAtEof: true);
            byte[] hash = await Task.Run(() => TestIo.WriteRandom(sourceWrite, 3 * Mib + 17), TestIo.Ct);

            var result = await pump.WaitAsync(TestIo.Timeout, TestIo.Ct);
            Assert.Equal(new PumpResult(3 * Mib + 17, 0, 0), result);
            Assert.Equal(hash, SHA256.HashData(await File.ReadAllBytesAsync(file, TestIo.Ct)));
        }
    }

    [Fact]
    public async Task Pumping_from_a_regular_file_copies_it_to_eof()
    {
        using var dir = TestIo.CreateTempDir();
        string file = dir.Combine("input");
        byte[] data = RandomNumberGenerator.GetBytes(2 * Mib + 5);
        await File.WriteAllBytesAsync(file, data, TestIo.Ct);
        using var source = Fds.Open(file, Fds.O_RDONLY);
        var (destinationRead, destinationWrite) = Pipes.Create();
        using (destinationRead)
        {
            var pump = IoLoop.Shared.Pump(source, destinationWrite, closeDestinationAtEof: true);
            byte[] hash = await Task.Run(() => TestIo.HashToEnd(destinationRead), TestIo.Ct).WaitAsync(TestIo.Timeout, TestIo.Ct);
            Assert.Equal(SHA256.HashData(data), hash);
            Assert.Equal(new PumpResult(data.Length, 0, 0), await pump.WaitAsync(TestIo.Timeout, TestIo.Ct));
        }
    }

    [Fact]
    public async Task A_pump_whose_reader_went_away_keeps_draining_the_source()
    {
        var (sourceRead, sourceWrite) = Pipes.Create();
        var (destinationRead, destinationWrite) = Pipes.Create();
        destinationRead.Dispose();
        using (sourceRead)
        using (destinationWrite)
        {
            var pump = IoLoop.Shared.Pump(sourceRead, destinationWrite, closeDestinationAtEof: false);
            // 8 MiB is far more than a pipe holds: the writer only finishes if the pump drains.
            await Task.Run(() => TestIo.WriteRandom(sourceWrite, 8 * Mib), TestIo.Ct).WaitAsync(TestIo.Timeout, TestIo.Ct);

            var result = await pump.WaitAsync(TestIo.Timeout, TestIo.Ct);
            Assert.Equal(EPIPE, result.Errno);
            Assert.Equal(8 * Mib, result.BytesCopied + result.BytesDropped);
            Assert.True(result.BytesDropped > 0);
            Assert.False(destinationWrite.IsClosed);
        }
    }

    [Fact]
    public async Task Output_written_before_the_fifo_reader_attaches_waits_in_the_fifo()
    {
        using var dir = TestIo.CreateTempDir();
        string fifo = dir.Combine("late");
        Fifos.Create(fifo);
        using var output = Fifos.OpenOutput(fifo);
        var (sourceRead, sourceWrite) = Pipes.Create();
        using (sourceRead)
        {
            // The FIFO keeps its data only while some end is open: the shim's O_RDWR handle.
            var pump = IoLoop.Shared.Pump(sourceRead, output, closeDestinationAtEof: false);
            using (sourceWrite)
            {
                Assert.Equal(5, TestIo.Write(sourceWrite, "early"u8));
            }
            Assert.Equal(5, (await pump.WaitAsync(TestIo.Timeout, TestIo.Ct)).BytesCopied);

            using var consumer = Fds.Open(fifo, Fds.O_RDONLY | Fds.O_NONBLOCK);
            var buffer = new byte[16];
            Assert.Equal(5, TestIo.Read(consumer, buffer));
            Assert.Equal("early"u8.ToArray(), buffer[..5]);
        }
    }

    [Fact]
    public async Task Watch_calls_back_on_the_loop_thread_when_the_fd_becomes_readable()
    {
        var (read, write) = Pipes.Create();
        using (read)
        using (write)
        {
            var fired = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
            using var watch = IoLoop.Shared.Watch(read, () =>
            {
                var buffer = new byte[8];
                while (TestIo.Read(read, buffer) > 0)
                {
                }
                fired.TrySetResult(Thread.CurrentThread.Name);
            });
            TestIo.Write(write, "x"u8);
            Assert.Equal("io-loop", await fired.Task.WaitAsync(TestIo.Timeout, TestIo.Ct));
        }
    }

    [Fact]
    public async Task A_throwing_callback_is_reported_and_the_loop_keeps_running()
    {
        using var loop = new IoLoop("io-loop-test");
        var failures = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        loop.CallbackFailed += ex => failures.TrySetResult(ex);
        var (read, write) = Pipes.Create();
        using (read)
        using (write)
        using (loop.Watch(read, () => throw new InvalidOperationException("boom")))
        {
            TestIo.Write(write, "x"u8);
            Assert.Equal("boom", (await failures.Task.WaitAsync(TestIo.Timeout, TestIo.Ct)).Message);

            var (sourceRead, sourceWrite) = Pipes.Create();
            var (destinationRead, destinationWrite) = Pipes.Create();
            using (sourceRead)
            using (destinationRead)
            {
                var pump = loop.Pump(sourceRead, destinationWrite, closeDestinationAtEof: true);
                using (sourceWrite)
                {
                    TestIo.Write(sourceWrite, "still alive"u8);
                }
                Assert.Equal(11, (await pump.WaitAsync(TestIo.Timeout, TestIo.Ct)).BytesCopied);
                Assert.Equal("still alive", await TestIo.ReadAllTextAsync(destinationRead));
            }
        }
    }

    [Fact]
    public async Task Disposing_a_loop_completes_running_pumps_as_cancelled()
    {
        var loop = new IoLoop("io-loop-test");
        var (sourceRead, sourceWrite) = Pipes.Create();
        var (destinationRead, destinationWrite) = Pipes.Create();
        using (sourceRead)
        using (sourceWrite)
        using (destinationRead)
        using (destinationWrite)
        {
            var pump = loop.Pump(sourceRead, destinationWrite, closeDestinationAtEof: false);
            TestIo.Write(sourceWrite, "abc"u8);
            loop.Dispose();
            var result = await pump.WaitAsync(TestIo.Timeout, TestIo.Ct);
            Assert.Equal(125, result.Errno);
        }
    }

    [Fact]
    public async Task Cancelling_a_pump_stuck_on_a_fifo_nobody_reads_releases_both_ends()
    {
        using var dir = TestIo.CreateTempDir();
        string fifo = dir.Combine("gone");
        Fifos.Create(fifo);
#pragma warning disable CA2000 // the pump owns its destination and closes it at EOF or cancel
        var output = Fifos.OpenOutput(fifo);   // no reader attached: the FIFO fills and stays full
#pragma warning restore CA2000
        var (sourceRead, sourceWrite) = Pipes.Create();
        using (sourceWrite)
        {
            using var cancel = new CancellationTokenSource();
            var pump = IoLoop.Shared.StartPump(sourceRead, output, closeDestinationAtEof: true, cancel.Token).Completion;
            sourceRead.Dispose();   // the pump's reference keeps the read end open while it runs
            // far more than the pipe and the FIFO hold: this write only ends once the read end is really closed
            var writer = Task.Run(() => TestIo.Write(sourceWrite, new byte[4 * Mib]), TestIo.Ct);

            await cancel.CancelAsync();
            var result = await pump.WaitAsync(TestIo.Timeout, TestIo.Ct);

            Assert.Equal(125, result.Errno);   // ECANCELED
            Assert.True(output.IsClosed);
            Assert.Equal(-EPIPE, await writer.WaitAsync(TestIo.Timeout, TestIo.Ct));
        }
    }

    [Fact]
    public async Task Progress_is_reported_on_the_loop_thread_after_bytes_moved_and_at_the_end()
    {
        using var loop = new IoLoop("test-progress-loop");
        var (sourceRead, sourceWrite) = Pipes.Create();
        var (destinationRead, destinationWrite) = Pipes.Create();
        using (sourceRead)
        using (destinationRead)
        {
            using var progressed = new SemaphoreSlim(0);
            long seenCopied = -1;
            bool onLoopThread = true;
            PumpHandle? pump = null;
            var handle = loop.StartPump(sourceRead, destinationWrite, closeDestinationAtEof: true, CancellationToken.None, () =>
            {
                onLoopThread &= Thread.CurrentThread.Name == "test-progress-loop";
                Volatile.Write(ref seenCopied, pump?.BytesCopied ?? -1);
                progressed.Release();
            });
            pump = handle;

            TestIo.Write(sourceWrite, new byte[1000]);
            Assert.True(await progressed.WaitAsync(TestIo.Timeout, TestIo.Ct));
            Assert.Equal(1000, Volatile.Read(ref seenCopied));   // the count is up to date when called

            sourceWrite.Dispose();
            var result = await handle.Completion.WaitAsync(TestIo.Timeout, TestIo.Ct);
            Assert.True(await progressed.WaitAsync(TestIo.Timeout, TestIo.Ct));   // the end is progress too
            Assert.Equal(1000, result.BytesCopied);
            Assert.True(onLoopThread);
        }
    }

    [Fact]
    public async Task Two_pumps_may_share_one_destination()
    {
        var (aRead, aWrite) = Pipes.Create();
        var (bRead, bWrite) = Pipes.Create();
        var (destinationRead, destinationWrite) = Pipes.Create();
        using (aRead)
        using (bRead)
        using (destinationRead)
        {
            var pumpA = IoLoop.Shared.Pump(aRead, destinationWrite, closeDestinationAtEof: false);
            var pumpB = IoLoop.Shared.Pump(bRead, destinationWrite, closeDestinationAtEof: false);
            var reader = Task.Run(() => TestIo.HashToEnd(destinationRead), TestIo.Ct);
            await Task.WhenAll(
                Task.Run(() => TestIo.WriteRandom(aWrite, 4 * Mib), TestIo.Ct),
                Task.Run(() => TestIo.WriteRandom(bWrite, 4 * Mib), TestIo.Ct)).WaitAsync(TestIo.Timeout, TestIo.Ct);
            var results = await Task.WhenAll(pumpA, pumpB).WaitAsync(TestIo.Timeout, TestIo.Ct);
            destinationWrite.Dispose();
            await reader.WaitAsync(TestIo.Timeout, TestIo.Ct);
            Assert.All(results, r => Assert.Equal(new PumpResult(4 * Mib, 0, 0), r));
        }
    }

    [Fact]
    public async Task A_stream_of_small_writes_arrives_whole_and_a_lone_write_after_it_is_not_held_back()
    {
        // small writes in quick succession make the loop gather before its next wait; nothing may
        // be lost or reordered by that, and a write that comes alone afterwards must still arrive
        var (sourceRead, sourceWrite) = Pipes.Create();
        var (destinationRead, destinationWrite) = Pipes.Create();
        using (sourceRead)
        using (sourceWrite)
        using (destinationRead)
        {
            var pump = IoLoop.Shared.Pump(sourceRead, destinationWrite, closeDestinationAtEof: true);
            var expected = new List<byte>();
            var received = new List<byte>();
            var buffer = new byte[64 * 1024];
            for (int i = 0; i < 20000; i++)
            {
                byte[] line = System.Text.Encoding.ASCII.GetBytes($"line {i}\n");
                expected.AddRange(line);
                Assert.Equal(line.Length, TestIo.Write(sourceWrite, line));
                if (i % 64 == 0)
                {
                    await DrainAsync(destinationRead, buffer, received, expected.Count - 64 * 12);
                }
            }
            await DrainAsync(destinationRead, buffer, received, expected.Count);

            await Task.Delay(50, TestIo.Ct);   // quiet, then one more line
            Assert.Equal(5, TestIo.Write(sourceWrite, "last\n"u8));
            expected.AddRange("last\n"u8.ToArray());
            await DrainAsync(destinationRead, buffer, received, expected.Count);

            Assert.Equal(expected, received);
            sourceWrite.Dispose();
            Assert.Equal(new PumpResult(expected.Count, 0, 0), await pump.WaitAsync(TestIo.Timeout, TestIo.Ct));
        }
    }

    /// <summary>Reads (blocking, on a pool thread) until at least <paramref name="atLeast"/> bytes were received in total.</summary>
    private static async Task DrainAsync(SafeFileHandle handle, byte[] buffer, List<byte> received, int atLeast)
    {
        while (received.Count < atLeast)
        {
            int n = await Task.Run(() => TestIo.Read(handle, buffer), TestIo.Ct).WaitAsync(TestIo.Timeout, TestIo.Ct);
            Assert.True(n > 0, $"read ended ({n}) after {received.Count} of {atLeast} bytes");
            received.AddRange(buffer.AsSpan(0, n).ToArray());
        }
    }
}
