using System.Diagnostics;
using CsCheck;
using Shim.Ttrpc.Fuzz.Targets;

namespace Shim.Ttrpc.Fuzz.Tests;

/// <summary>
/// The targets with state: task requests into live containers (service-live), byte streams through
/// a real socket into the server as the shim serves it (server-socket), and what a server sends the
/// ttrpc client (client-responses). Counts are fixed so a run takes seconds to a minute.
/// </summary>
[Collection(FuzzCollection.Name)]
public sealed class LiveTargetFuzzTests
{
    [Fact]
    public async Task Requests_into_live_containers_get_a_status_that_says_what_was_wrong_and_c1_keeps_answering()
    {
        var service = new ServiceTarget();
        await using (service.ConfigureAwait(false))
        {
            await service.StartAsync();
            var run = ServiceTarget.Target(service);
            var clock = Stopwatch.StartNew();
            ServiceGen.Input.Sample(bytes => run.Run(bytes), iter: 3_000, threads: 1, print: FrameGen.Hex);
            TestContext.Current.TestOutputHelper?.WriteLine($"fuzz service-live: 3000 inputs in {clock.Elapsed.TotalSeconds:F1} s, {service.Screened} screened; " +
                string.Join(", ", service.Outcomes.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}")));
            foreach (string method in (string[])["Create", "Exec", "Start", "Update", "Checkpoint", "Kill", "Delete"])
            {
                Assert.True(service.Outcomes.GetValueOrDefault($"{method} OK") > 0, $"no {method} succeeded");
                Assert.True(service.Outcomes.Where(kv => kv.Key.StartsWith(method + " ", StringComparison.Ordinal) && !kv.Key.EndsWith(" OK", StringComparison.Ordinal)).Sum(kv => kv.Value) > 0, $"no {method} failed");
            }
        }
    }

    [Fact]
    public async Task Byte_streams_written_in_pieces_half_closed_or_reset_get_well_formed_answers_and_leave_no_connection()
    {
        var socket = new SocketTarget();
        await using (socket.ConfigureAwait(false))
        {
            var run = SocketTarget.Target(socket);
            var input = Gen.Select(Gen.Byte, Gen.Byte, FrameGen.Input, (mode, seed, bytes) => (byte[])[mode, seed, .. bytes]);
            var clock = Stopwatch.StartNew();
            input.Sample(bytes => run.Run(bytes), iter: 3_000, threads: 1, print: FrameGen.Hex);
            TestContext.Current.TestOutputHelper?.WriteLine($"fuzz server-socket: 3000 connections in {clock.Elapsed.TotalSeconds:F1} s");
        }
    }

    [Fact]
    public void Whatever_a_server_answers_every_client_call_ends_with_a_response_or_a_TtrpcException()
    {
        var run = ClientTarget.Target;
        var clock = Stopwatch.StartNew();
        ParserGen.For("client-responses").Sample(bytes => run.Run(bytes), iter: 5_000, threads: 1, print: FrameGen.Hex);
        TestContext.Current.TestOutputHelper?.WriteLine($"fuzz client-responses: 5000 inputs in {clock.Elapsed.TotalSeconds:F1} s");
    }
}
