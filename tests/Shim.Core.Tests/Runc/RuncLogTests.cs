using System.Text;
using Shim.Runc;

namespace Shim.Core.Tests.Runc;

public class RuncLogTests
{
    [Fact]
    public void The_last_error_line_wins_over_earlier_errors_and_later_warnings()
    {
        var log = """
            {"level":"error","msg":"old failure","time":"t"}
            {"level":"info","msg":"fine","time":"t"}
            {"level":"error","msg":"container \"c1\" does not exist","time":"t"}
            {"level":"warning","msg":"later warning","time":"t"}

            """;
        Assert.Equal("container \"c1\" does not exist", RuncLog.LastErrorIn(Encoding.UTF8.GetBytes(log)));
    }

    [Fact]
    public void Garbage_and_partial_lines_give_no_error()
    {
        Assert.Null(RuncLog.LastErrorIn("rror\",\"msg\":\"cut\"}\nnot json\n"u8));
        Assert.Null(RuncLog.LastErrorIn(""u8));
    }

    [Fact]
    public void A_missing_log_file_gives_no_error()
    {
        Assert.Null(RuncLog.LastError("/nonexistent/log.json"));
    }

    [Theory]
    [InlineData("container \"c1\" does not exist", true)]
    [InlineData("container not running", true)]
    [InlineData("process already finished", true)]
    [InlineData("permission denied", false)]
    public void Runc_texts_for_gone_containers_map_to_not_found(string message, bool notFound)
    {
        Assert.Equal(notFound, new RuncException("kill", 1, message).IsNotFound);
    }
}
