namespace Shim.E2E.Tests;

/// <summary>Several containers at once through one daemon.</summary>
public sealed class ConcurrencyTests : E2ETest
{
    [Fact]
    public async Task Five_containers_started_at_once_each_return_their_own_exit_code_and_output()
    {
        var ids = Enumerable.Range(1, 5).Select(i => (Id: $"par{i}", Code: 10 + i)).ToList();

        var results = await Task.WhenAll(ids.Select(c => RunAsync(c.Id, "sh", "-c", $"echo {c.Id}; sleep 0.3; exit {c.Code}")));

        for (int i = 0; i < ids.Count; i++)
        {
            Assert.True(results[i].ExitCode == ids[i].Code, $"{ids[i].Id}: {results[i].Describe()}");
            Assert.Equal($"{ids[i].Id}\n", results[i].Stdout);
        }
    }
}
