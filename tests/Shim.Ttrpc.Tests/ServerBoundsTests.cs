using System.Diagnostics;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Shim.Ttrpc.Tests;

/// <summary>The server's bounds: connections, calls in flight per connection, peers stalled inside a frame.</summary>
public sealed class ServerBoundsTests
{
    private const byte RequestType = (byte)FrameType.Request;

    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    private static readonly string[] HeldValues = ["one", "two"];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_connection_over_the_bound_is_told_resource_exhausted_naming_the_bound_and_the_earlier_ones_keep_working()
    {
        var warnings = new Lines();
        await using var server = new TestServer(TestServer.EchoRegistry(), new TtrpcServerOptions { MaxConnections = 3, Warn = warnings.Add });
        var admitted = new List<TtrpcClient>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                admitted.Add(await server.ConnectAsync());
                await EchoAsync(admitted[i], $"first {i}");
            }

            for (int i = 0; i < 4; i++)
            {
                await using var over = await server.ConnectAsync();
                var refused = await Assert.ThrowsAsync<TtrpcException>(() => EchoAsync(over, "one too many"));
                Assert.Equal(StatusCode.ResourceExhausted, refused.Code);
                Assert.Equal("ttrpc: too many connections to this server (3)", refused.Message);
                await over.Closed.WaitAsync(Patience, Ct);
            }

            for (int i = 0; i < admitted.Count; i++)
            {
                await EchoAsync(admitted[i], $"still {i}");
            }

            Assert.Equal(3, server.Server.ConnectionCount);
            // the burst of four refusals is one line
            Assert.Single(warnings.Snapshot());
            Assert.Contains("refusing connections over the bound of 3", warnings.Snapshot()[0], StringComparison.Ordinal);

            // a freed slot is served again, and the refusals not logged yet go out in one line
            await admitted[0].DisposeAsync();
            admitted.RemoveAt(0);
            await WaitUntilAsync(() => server.Server.ConnectionCount == 2);
            admitted.Add(await server.ConnectAsync());
            await EchoAsync(admitted[^1], "after");
            Assert.Equal(2, warnings.Snapshot().Count);
            Assert.Contains("serving new connections again; 3 more were refused over the bound of 3", warnings.Snapshot()[1], StringComparison.Ordinal);
        }
        finally
        {
            foreach (var client in admitted)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Over_the_bound_at_most_sixteen_connections_wait_for_their_answer_and_the_rest_are_closed_at_once()
    {
        await using var server = new TestServer(TestServer.EchoRegistry(), new TtrpcServerOptions { MaxConnections = 1, FrameTimeout = Timeout.InfiniteTimeSpan });
        await using var admitted = await server.ConnectAsync();
        await EchoAsync(admitted, "in");
        var over = new List<RawConnection>();
        try
        {
            for (int i = 0; i < 20; i++)
            {
                over.Add(await server.ConnectRawAsync());
            }

            // accepted in connect order: the four past the sixteen waiting are closed unanswered
            foreach (var raw in over[16..])
            {
                Assert.True(await raw.PeerClosedAsync(), "a connection past the waiting refusals was left open");
            }

            foreach (var raw in over[..16])
            {
                await raw.SendRequestAsync(1, RawConnection.Request("Echo", new StringValue { Value = "over" }));
                var (id, response) = await raw.ReadResponseAsync();
                Assert.Equal(1u, id);
                Assert.Equal((int)StatusCode.ResourceExhausted, response.Status.Code);
                Assert.True(await raw.PeerClosedAsync(), "a refused connection stayed open after its answer");
            }

            await EchoAsync(admitted, "still in");
        }
        finally
        {
            over.ForEach(raw => raw.Dispose());
        }
    }

    [Fact]
    public async Task A_connection_over_the_bound_that_sends_nothing_is_closed_after_the_frame_timeout()
    {
        var timeout = TimeSpan.FromMilliseconds(300);
        await using var server = new TestServer(TestServer.EchoRegistry(), new TtrpcServerOptions { MaxConnections = 1, FrameTimeout = timeout });
        await using var admitted = await server.ConnectAsync();
        await EchoAsync(admitted, "in");

        var clock = Stopwatch.StartNew();
        using var silent = await server.ConnectRawAsync();

        Assert.True(await silent.PeerClosedAsync(), "a silent connection over the bound was kept");
        Assert.True(clock.Elapsed >= timeout * 0.8, $"closed after {clock.Elapsed}, before the frame timeout");
        await EchoAsync(admitted, "still in");
    }

    [Fact]
    public async Task A_request_over_the_in_flight_bound_is_answered_at_once_and_not_run()
    {
        int started = 0, activity = 0;
        var activityChanged = new Changes();
        var twoStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var registry = TestServer.EchoRegistry();
        registry.Register(TestServer.Service, "Hang", StringValue.Parser, async (StringValue request, TtrpcCallContext context) =>
        {
            if (Interlocked.Increment(ref started) == 2)
            {
                twoStarted.SetResult();
            }

            await release.Task.WaitAsync(context.CancellationToken);
            return request;
        });
        await using var server = new TestServer(registry, new TtrpcServerOptions
        {
            MaxRequestsInFlight = 2,
            Activity = () =>
            {
                Interlocked.Increment(ref activity);
                activityChanged.Fire();
            },
        });
        await using var busy = await server.ConnectAsync();
        await using var other = await server.ConnectAsync();

        var held = HeldValues.Select(v => CallAsync(busy, "Hang", v)).ToArray();
        await twoStarted.Task.WaitAsync(Patience, Ct);
        foreach (var method in new[] { "Hang", "Echo" })
        {
            var refused = await Assert.ThrowsAsync<TtrpcException>(() => CallAsync(busy, method, "three"));
            Assert.Equal(StatusCode.ResourceExhausted, refused.Code);
            Assert.Equal("ttrpc: too many requests in flight on this connection (2)", refused.Message);
        }

        Assert.Equal(2, Volatile.Read(ref started));
        Assert.Equal("elsewhere", await CallAsync(other, "Echo", "elsewhere"));   // the bound is per connection
        release.SetResult();
        Assert.Equal(HeldValues, await Task.WhenAll(held).WaitAsync(Patience, Ct));

        // Activity is told at each dispatch and once a call has left the count after its answer:
        // 2 for the call on `other`, 4 for the two held ones (the refused ones are never dispatched)
        await activityChanged.UntilAsync(() => Volatile.Read(ref activity) == 6);
        Assert.Equal("four", await CallAsync(busy, "Echo", "four"));
    }

    [Fact]
    public async Task Peers_stalled_inside_a_frame_are_dropped_after_the_timeout_and_an_idle_connection_is_kept()
    {
        var timeout = TimeSpan.FromMilliseconds(300);
        var warnings = new Lines();
        await using var server = new TestServer(TestServer.EchoRegistry(), new TtrpcServerOptions { FrameTimeout = timeout, Warn = warnings.Add });
        await using var idle = await server.ConnectAsync();
        await EchoAsync(idle, "before");

        var clock = Stopwatch.StartNew();
        using var halfHeader = await server.ConnectRawAsync();
        await halfHeader.SendAsync(RawConnection.Header(100, 1, RequestType).AsMemory(0, 4));
        using var halfPayload = await server.ConnectRawAsync();
        await halfPayload.SendAsync([.. RawConnection.Header(100, 1, RequestType), .. new byte[10]]);

        Assert.True(await halfHeader.PeerClosedAsync(), "a peer stalled inside a header was kept");
        Assert.True(await halfPayload.PeerClosedAsync(), "a peer stalled inside a payload was kept");
        Assert.True(clock.Elapsed >= timeout * 0.8, $"dropped after {clock.Elapsed}, before the frame timeout");

        // the idle connection waited longer than the timeout between frames, and is still served
        Assert.True(clock.Elapsed > timeout);
        Assert.Equal("after", await CallAsync(idle, "Echo", "after"));
        await WaitUntilAsync(() => server.Server.ConnectionCount == 1);
        Assert.Contains(warnings.Snapshot(), line => line.Contains("stalled inside a frame", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_peer_trickling_a_frame_byte_by_byte_is_dropped_too()
    {
        await using var server = new TestServer(TestServer.EchoRegistry(), new TtrpcServerOptions { FrameTimeout = TimeSpan.FromMilliseconds(500) });
        using var raw = await server.ConnectRawAsync();
        await raw.SendAsync(RawConnection.Header(100, 1, RequestType));

        // a byte every 100 ms: progress, but the frame would take 10 s
        int sent = 0;
        using var pace = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        while (sent < 100 && await pace.WaitForNextTickAsync(Ct))
        {
            try
            {
                await raw.SendAsync(new byte[1]);
                sent++;
            }
            catch (System.Net.Sockets.SocketException)
            {
                break;
            }
        }

        Assert.True(await raw.PeerClosedAsync(), "the trickling peer was kept");
        Assert.True(sent < 100, "the whole frame got through");
    }

    [Fact]
    public async Task The_stall_timer_is_armed_only_while_a_frame_is_half_read()
    {
        var time = new RecordingTime();
        await using var server = new TestServer(TestServer.EchoRegistry(), new TtrpcServerOptions { FrameTimeout = TimeSpan.FromMilliseconds(300), Time = time });
        await using var client = await server.ConnectAsync();
        for (int i = 0; i < 50; i++)
        {
            await EchoAsync(client, $"whole frame {i}");
        }

        Assert.Equal(0, time.Arms);   // whole frames never arm it

        // a frame that arrives in two parts arms it while the server waits for the second, and disarms it after
        using var raw = await server.ConnectRawAsync();
        byte[] envelope = RawConnection.Request("Echo", new StringValue { Value = "in two parts" }).ToByteArray();
        byte[] whole = [.. RawConnection.Header((uint)envelope.Length, 1, RequestType), .. envelope];
        await raw.SendAsync(whole.AsMemory(0, 12));
        await time.Changed.UntilAsync(() => time.Arms == 1);
        Assert.True(time.Armed);
        await raw.SendAsync(whole.AsMemory(12));
        var (id, response) = await raw.ReadResponseAsync();
        Assert.Equal(1u, id);
        Assert.Equal(0, response.Status?.Code ?? 0);
        Assert.False(time.Armed);

        // a stalled one arms it, and once dropped nothing is left to wake for
        using var stalled = await server.ConnectRawAsync();
        await stalled.SendAsync(RawConnection.Header(100, 1, RequestType));
        Assert.True(await stalled.PeerClosedAsync());
        Assert.True(time.Arms >= 2);
        await time.Changed.UntilAsync(() => !time.Armed);
    }

    [Fact]
    public async Task A_request_of_3_MiB_is_received_whole_through_the_growing_payload_buffer()
    {
        await using var server = new TestServer(TestServer.EchoRegistry());
        await using var client = await server.ConnectAsync();
        string big = string.Create(3 << 20, 0, static (chars, _) =>
        {
            for (int i = 0; i < chars.Length; i++)
            {
                chars[i] = (char)('a' + (i * 7 % 26));
            }
        });

        Assert.Equal(big, await EchoAsync(client, big));
    }

    [Fact]
    public void Bounds_below_one_and_a_timeout_of_zero_are_refused()
    {
        var registry = TestServer.EchoRegistry();
        Assert.Throws<ArgumentOutOfRangeException>(() => new TtrpcServer(registry, new TtrpcServerOptions { MaxConnections = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TtrpcServer(registry, new TtrpcServerOptions { MaxRequestsInFlight = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TtrpcServer(registry, new TtrpcServerOptions { FrameTimeout = TimeSpan.Zero }));
    }

    private static Task<string> EchoAsync(TtrpcClient client, string value) => CallAsync(client, "Echo", value);

    private static async Task<string> CallAsync(TtrpcClient client, string method, string value) =>
        (await client.CallAsync(TestServer.Service, method, new StringValue { Value = value }, StringValue.Parser, timeout: Patience, ct: Ct)).Value;

    /// <summary>Waits for the server's connection count, which no callback reports, checking it every few milliseconds up to <see cref="Patience"/>.</summary>
    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < Patience, "the condition did not come true in time");
            await Task.Delay(10, Ct);
        }
    }

    /// <summary>Log lines collected from any thread.</summary>
    private sealed class Lines
    {
        private readonly List<string> _lines = [];

        public void Add(string line)
        {
            lock (_lines)
            {
                _lines.Add(line);
            }
        }

        public List<string> Snapshot()
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    /// <summary>Something a callback of the test changes: a waiter re-checks its condition at each change, never on a clock.</summary>
    private sealed class Changes
    {
        private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Fire() => Interlocked.Exchange(ref _next, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

        public async Task UntilAsync(Func<bool> condition)
        {
            var clock = Stopwatch.StartNew();
            while (true)
            {
                var next = Volatile.Read(ref _next);   // taken before the check: a change after it completes this
                if (condition())
                {
                    return;
                }
                Assert.True(clock.Elapsed < Patience, "the condition did not come true in time");
                await next.Task.WaitAsync(Patience, Ct);
            }
        }
    }

    /// <summary>The system clock, counting how often a timer it made was armed and whether it is armed now.</summary>
    private sealed class RecordingTime : TimeProvider
    {
        public Changes Changed { get; } = new();

        private int _arms;
        private int _armed;

        public int Arms => Volatile.Read(ref _arms);

        public bool Armed => Volatile.Read(ref _armed) != 0;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = new Recorded(this, System.CreateTimer(callback, state, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan));
            timer.Change(dueTime, period);
            return timer;
        }

        private sealed class Recorded(RecordingTime owner, ITimer inner) : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period)
            {
                bool arming = dueTime != Timeout.InfiniteTimeSpan;
                if (arming)
                {
                    Interlocked.Increment(ref owner._arms);
                }

                Volatile.Write(ref owner._armed, arming ? 1 : 0);
                owner.Changed.Fire();
                return inner.Change(dueTime, period);
            }

            public void Dispose() => inner.Dispose();

            public ValueTask DisposeAsync() => inner.DisposeAsync();
        }
    }
}
