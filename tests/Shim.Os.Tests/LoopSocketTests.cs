using System.Runtime.InteropServices;
using System.Text;
using Shim.Os.Tests.Support;
using Shim.Os.Io;

namespace Shim.Os.Tests;

public sealed class LoopSocketTests
{
    private static IoLoop Loop => IoLoop.Shared;

    [Fact]
    public async Task Bytes_written_on_one_end_are_read_on_the_other_in_order()
    {
        using var pair = await Pair.CreateAsync();
        await pair.Client.WriteAsync("hello "u8.ToArray(), TestIo.Ct);
        await pair.Client.WriteAsync("world"u8.ToArray(), TestIo.Ct);

        Assert.Equal("hello world", await ReadStringAsync(pair.Server, 11));
    }

    [Fact]
    public async Task A_read_waits_until_data_arrives()
    {
        using var pair = await Pair.CreateAsync();
        var buffer = new byte[16];
        var read = pair.Server.ReadAsync(buffer, TestIo.Ct).AsTask();
        await Task.Delay(50, TestIo.Ct);
        Assert.False(read.IsCompleted);

        await pair.Client.WriteAsync("x"u8.ToArray(), TestIo.Ct);
        Assert.Equal(1, await read.WaitAsync(TestIo.Timeout, TestIo.Ct));
        Assert.Equal((byte)'x', buffer[0]);
    }

    [Fact]
    public async Task Closing_the_peer_reads_as_end_of_stream_after_the_remaining_data()
    {
        using var pair = await Pair.CreateAsync();
        var buffer = new byte[16];
        var pending = pair.Server.ReadAsync(buffer, TestIo.Ct).AsTask();
        pair.Client.Close();
        Assert.Equal(0, await pending.WaitAsync(TestIo.Timeout, TestIo.Ct));
        Assert.Equal(0, await pair.Server.ReadAsync(buffer, TestIo.Ct));
    }

    [Fact]
    public async Task Writing_to_a_peer_that_left_fails_with_an_io_error_not_sigpipe()
    {
        using var pair = await Pair.CreateAsync();
        pair.Server.Close();
        var chunk = new byte[64 * 1024];
        var ex = await Assert.ThrowsAsync<IOException>(async () =>
        {
            for (int i = 0; i < 100; i++)
            {
                await pair.Client.WriteAsync(chunk, TestIo.Ct);
            }
        });
        Assert.Contains("send", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_large_write_completes_once_the_reader_drains_the_socket()
    {
        using var pair = await Pair.CreateAsync();
        var data = new byte[8 * 1024 * 1024];
        Random.Shared.NextBytes(data);
        var write = pair.Client.WriteAsync(data, TestIo.Ct).AsTask();

        var received = new byte[data.Length];
        int total = 0;
        while (total < received.Length)
        {
            int n = await pair.Server.ReadAsync(received.AsMemory(total), TestIo.Ct);
            Assert.NotEqual(0, n);
            total += n;
        }
        await write.WaitAsync(TestIo.Timeout, TestIo.Ct);
        Assert.Equal(data, received);
    }

    [Fact]
    public async Task Cancelling_a_pending_read_throws_and_leaves_the_socket_usable()
    {
        using var pair = await Pair.CreateAsync();
        using var cts = new CancellationTokenSource();
        var buffer = new byte[4];
        var read = pair.Server.ReadAsync(buffer, cts.Token).AsTask();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read.WaitAsync(TestIo.Timeout, TestIo.Ct));

        await pair.Client.WriteAsync("ok"u8.ToArray(), TestIo.Ct);
        Assert.Equal("ok", await ReadStringAsync(pair.Server, 2));
    }

    [Fact]
    public async Task Closing_while_a_read_is_pending_fails_it_with_object_disposed()
    {
        using var pair = await Pair.CreateAsync();
        var read = pair.Server.ReadAsync(new byte[4], TestIo.Ct).AsTask();
        await Task.Delay(20, TestIo.Ct);
        pair.Server.Close();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => read.WaitAsync(TestIo.Timeout, TestIo.Ct));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => pair.Server.ReadAsync(new byte[4], TestIo.Ct).AsTask());
    }

    [Fact]
    public async Task Disposing_the_listener_fails_a_pending_accept()
    {
        using var dir = TestIo.CreateTempDir();
        var listener = LoopListener.Bind(Loop, dir.Combine("s"));
        var accept = listener.AcceptAsync(TestIo.Ct).AsTask();
        await Task.Delay(20, TestIo.Ct);
        listener.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => accept.WaitAsync(TestIo.Timeout, TestIo.Ct));
    }

    [Fact]
    public async Task Connecting_to_a_missing_socket_fails_with_an_io_error()
    {
        using var dir = TestIo.CreateTempDir();
        var ex = await Assert.ThrowsAsync<IOException>(() => LoopSocket.ConnectAsync(Loop, dir.Combine("none"), TestIo.Ct).AsTask());
        Assert.Contains("connect", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_listener_reports_its_path_and_the_peer_credentials_are_ours()
    {
        using var pair = await Pair.CreateAsync();
        Assert.Equal(pair.Path, pair.Listener.LocalPath);
        var (pid, uid, gid) = pair.Server.PeerCredentials();
        Assert.Equal(ProcessInfo.Pid, pid);
        Assert.Equal(ProcessInfo.EffectiveUid, uid);
        Assert.Equal(ProcessInfo.EffectiveGid, gid);
    }

    [Fact]
    public async Task Many_connections_ping_pong_concurrently()
    {
        using var dir = TestIo.CreateTempDir();
        using var listener = LoopListener.Bind(Loop, dir.Combine("s"));
        const int Connections = 20;
        var server = Task.Run(async () =>
        {
            var echoes = new List<Task>();
            for (int i = 0; i < Connections; i++)
            {
                var socket = await listener.AcceptAsync(TestIo.Ct);
                echoes.Add(Task.Run(async () =>
                {
                    using (socket)
                    {
                        var buffer = new byte[256];
                        int n;
                        while ((n = await socket.ReadAsync(buffer, TestIo.Ct)) > 0)
                        {
                            await socket.WriteAsync(buffer.AsMemory(0, n), TestIo.Ct);
                        }
                    }
                }, TestIo.Ct));
            }
            await Task.WhenAll(echoes);
        }, TestIo.Ct);
        var clients = Enumerable.Range(0, Connections).Select(async c =>
        {
            using var socket = await LoopSocket.ConnectAsync(Loop, dir.Combine("s"), TestIo.Ct);
            for (int i = 0; i < 50; i++)
            {
                string message = $"c{c} m{i}";
                await socket.WriteAsync(Encoding.ASCII.GetBytes(message), TestIo.Ct);
                Assert.Equal(message, await ReadStringAsync(socket, message.Length));
            }
        });
        await Task.WhenAll(clients).WaitAsync(TestIo.Timeout, TestIo.Ct);
        await server.WaitAsync(TestIo.Timeout, TestIo.Ct);
    }

    [Fact]
    public void Blocked_signals_are_seen_on_the_thread_that_blocked_them()
    {
        bool before = true, after = false;
        var thread = new Thread(() =>
        {
            before = SignalFd.AreBlocked(Signals.SIGUSR1);
            SignalFd.Block(Signals.SIGUSR1);
            after = SignalFd.AreBlocked(Signals.SIGUSR1);
        });
        thread.Start();
        thread.Join();
        Assert.False(before);
        Assert.True(after);
    }

    private static async Task<string> ReadStringAsync(LoopSocket socket, int length)
    {
        var buffer = new byte[length];
        int total = 0;
        while (total < length)
        {
            int n = await socket.ReadAsync(buffer.AsMemory(total), TestIo.Ct).AsTask().WaitAsync(TestIo.Timeout, TestIo.Ct);
            if (n == 0)
            {
                throw new EndOfStreamException();
            }
            total += n;
        }
        return Encoding.ASCII.GetString(buffer);
    }

    private sealed class Pair : IDisposable
    {
        private readonly TestIo.TempDir _dir;

        private Pair(TestIo.TempDir dir, string path, LoopListener listener, LoopSocket client, LoopSocket server)
        {
            _dir = dir;
            Path = path;
            Listener = listener;
            Client = client;
            Server = server;
        }

        public string Path { get; }
        public LoopListener Listener { get; }
        public LoopSocket Client { get; }
        public LoopSocket Server { get; }

        public static async Task<Pair> CreateAsync()
        {
            var dir = TestIo.CreateTempDir();
            string path = dir.Combine("s");
            var listener = LoopListener.Bind(Loop, path);
            var accept = listener.AcceptAsync(TestIo.Ct).AsTask();
            var client = await LoopSocket.ConnectAsync(Loop, path, TestIo.Ct);
            var server = await accept.WaitAsync(TestIo.Timeout, TestIo.Ct);
            return new Pair(dir, path, listener, client, server);
        }

        public void Dispose()
        {
            Client.Dispose();
            Server.Dispose();
            Listener.Dispose();
            _dir.Dispose();
        }
    }
}
