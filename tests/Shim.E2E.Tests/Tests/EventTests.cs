using System.Text.Json;

namespace Shim.E2E.Tests;

/// <summary>Task events as `ctr events` shows them.</summary>
public sealed class EventTests : E2ETest
{
    [Fact]
    public async Task Task_events_arrive_in_order_with_namespace_timestamps_and_fields()
    {
        await using var events = Ctrd.StartEvents();
        await events.EnsureSubscribedAsync(Ctrd, Ns, Ct);

        var r = await RunAsync("ev1", "sh", "-c", "exit 3");
        Assert.True(r.ExitCode == 3, r.Describe());

        var all = await events.WaitForAsync(es => es.Any(e => IsTaskEventOf(e, "ev1") && e.Topic == "/tasks/delete"),
            TimeSpan.FromSeconds(20), "/tasks/delete for ev1", Ct);
        var mine = all.Where(e => IsTaskEventOf(e, "ev1")).ToList();
        var listing = string.Join('\n', mine.Select(e => e.Raw));

        Assert.True(mine.Select(e => e.Topic).SequenceEqual(["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"]), listing);
        Assert.All(mine, e => Assert.Equal(Ns, e.Namespace));
        Assert.All(mine, e => Assert.True(e.Timestamp is not null, $"unparsable timestamp: {e.Raw}"));
        for (int i = 1; i < mine.Count; i++) { Assert.True(mine[i].Timestamp >= mine[i - 1].Timestamp, listing); }

        using var create = JsonDocument.Parse(mine[0].Json);
        Assert.EndsWith("/ev1", create.RootElement.GetProperty("bundle").GetString(), StringComparison.Ordinal);
        var pid = create.RootElement.GetProperty("pid").GetInt32();
        Assert.True(pid > 0, listing);

        using var start = JsonDocument.Parse(mine[1].Json);
        Assert.Equal(pid, start.RootElement.GetProperty("pid").GetInt32());

        using var exit = JsonDocument.Parse(mine[2].Json);
        Assert.Equal("ev1", exit.RootElement.GetProperty("id").GetString());
        Assert.Equal(pid, exit.RootElement.GetProperty("pid").GetInt32());
        Assert.Equal(3, exit.RootElement.GetProperty("exit_status").GetInt32());
        var exitedAt = Time(exit.RootElement.GetProperty("exited_at"));
        Assert.True(Math.Abs((DateTimeOffset.UtcNow - exitedAt).TotalMinutes) < 5, $"exited_at {exitedAt:O} is not now");

        using var delete = JsonDocument.Parse(mine[3].Json);
        Assert.Equal(3, delete.RootElement.GetProperty("exit_status").GetInt32());
        Assert.Equal(pid, delete.RootElement.GetProperty("pid").GetInt32());
        Assert.Equal(exitedAt, Time(delete.RootElement.GetProperty("exited_at")));
    }

    /// <summary>
    /// A protobuf Timestamp as ctr prints it: an RFC 3339 string (ctr 1.6, gogo types) or
    /// {"seconds":…,"nanos":…} (ctr 1.7 and 2.x, Go protobuf v2 types through encoding/json).
    /// </summary>
    private static DateTimeOffset Time(JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.String) { return e.GetDateTimeOffset(); }
        long seconds = e.TryGetProperty("seconds", out var s) ? s.GetInt64() : 0;
        long nanos = e.TryGetProperty("nanos", out var n) ? n.GetInt64() : 0;
        return DateTimeOffset.FromUnixTimeSeconds(seconds).AddTicks(nanos / 100);
    }

    private bool IsTaskEventOf(CtrEvent e, string id) =>
        e.Namespace == Ns && e.Topic.StartsWith("/tasks/", StringComparison.Ordinal)
        && e.Json.Contains($"\"container_id\":\"{id}\"", StringComparison.Ordinal);
}
