using System.Security.Cryptography;
using Shim.Core.Stdio;
using Shim.Os;
using Shim.Os.Terminals;

namespace Shim.Core.Tests.Stdio;

/// <summary>Delete's wait for output: as long as bytes move, and not a moment for a reader that went away.</summary>
public sealed class ProcessIoTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rcs-processio-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Waiting_for_output_outlasts_the_idle_timeout_while_a_slow_reader_keeps_reading()
    {
        string fifo = Path.Combine(_dir, "stdout");
        Fifos.Create(fifo);
        using var io = ProcessIo.Open(TestStdio.Context, new StdioPaths("", fifo, "", Terminal: false), 0, 0);
        var data = RandomNumberGenerator.GetBytes(2 * 1024 * 1024);
        var writer = WriteAndCloseAsync(io, data);   // the process: writes, then exits
        io.Start();
        await using var reader = new FileStream(fifo, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);

        // 64 KiB every 100 ms: about 3 s for everything, three idle timeouts, but never one without progress
        var reading = Task.Run(async () =>
        {
            var got = new MemoryStream();
            var buffer = new byte[64 * 1024];
            int n;
            while ((n = await reader.ReadAsync(buffer, Ct)) > 0)
            {
                await got.WriteAsync(buffer.AsMemory(0, n), Ct);
                await Task.Delay(100, Ct);
            }
            return got.ToArray();
        }, Ct);
        bool drained = await io.WaitOutputAsync(TimeSpan.FromSeconds(1));

        Assert.True(drained);
        await writer.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        byte[] got = await reading.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(data.Length, got.Length);
        Assert.True(data.AsSpan().SequenceEqual(got), "the bytes read differ from the bytes written");
    }

    [Fact]
    public async Task Waiting_for_output_nobody_reads_gives_up_after_the_idle_timeout_and_dispose_releases_the_fifo()
    {
        string fifo = Path.Combine(_dir, "stdout");
        Fifos.Create(fifo);
        var io = ProcessIo.Open(TestStdio.Context, new StdioPaths("", fifo, "", Terminal: false), 0, 0);
        var writer = WriteAndCloseAsync(io, new byte[256 * 1024]);   // more than the pipe and the FIFO hold
        io.Start();

        Assert.False(await io.WaitOutputAsync(TimeSpan.FromMilliseconds(300)));
        io.Dispose();

        // once the copy is stopped its read end of the process's pipe is closed: the blocked writer fails
        await Assert.ThrowsAsync<IOException>(() => writer.WaitAsync(TimeSpan.FromSeconds(30), Ct));
    }

    [Fact]
    public async Task Output_left_in_the_fifo_is_held_until_the_reader_has_read_it()
    {
        string fifo = Path.Combine(_dir, "stdout");
        Fifos.Create(fifo);
        using var io = ProcessIo.Open(TestStdio.Context, new StdioPaths("", fifo, "", Terminal: false), 0, 0);
        await using var reader = new FileStream(fifo, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
        var data = RandomNumberGenerator.GetBytes(40 * 1024);   // fits in the pipe and the FIFO: the writer never blocks
        await WriteAndCloseAsync(io, data);                     // the process wrote, then exited
        io.Start();

        Assert.True(io.HoldsUnreadOutput());
        var waiting = io.WaitOutputReadAsync(TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(60));
        await Task.Delay(100, Ct);
        Assert.False(waiting.IsCompleted);   // nobody has read yet, and 100 ms is far from the limit

        var got = new MemoryStream();
        var buffer = new byte[64 * 1024];
        while (got.Length < data.Length)
        {
            await got.WriteAsync(buffer.AsMemory(0, await reader.ReadAsync(buffer, Ct)), Ct);
        }
        await waiting.WaitAsync(TimeSpan.FromSeconds(10), Ct);   // long before the 20 s limit
        Assert.False(io.HoldsUnreadOutput());
        Assert.True(data.AsSpan().SequenceEqual(got.ToArray()));
    }

    [Fact]
    public async Task Output_nobody_reads_is_held_no_longer_than_the_idle_limit()
    {
        string fifo = Path.Combine(_dir, "stdout");
        Fifos.Create(fifo);
        using var io = ProcessIo.Open(TestStdio.Context, new StdioPaths("", fifo, "", Terminal: false), 0, 0);
        await WriteAndCloseAsync(io, new byte[1000]);
        io.Start();

        await io.WaitOutputReadAsync(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(60)).WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.True(io.HoldsUnreadOutput());   // still there: the exit is reported anyway
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Writes through a second handle on the process side of stdout (runc's copy is closed by Start), then closes it.</summary>
    private static Task WriteAndCloseAsync(ProcessIo io, byte[] data)
    {
#pragma warning disable CA2000 // handed to the stream the test disposes
        var handle = File.OpenHandle($"/proc/self/fd/{io.RuncSide.Stdout!.DangerousGetHandle()}", FileMode.Open, FileAccess.Write);
#pragma warning restore CA2000
        return Task.Run(async () =>
        {
            await using var stream = new FileStream(handle, FileAccess.Write, bufferSize: 0);
            await stream.WriteAsync(data, Ct);
        }, Ct);
    }
}
