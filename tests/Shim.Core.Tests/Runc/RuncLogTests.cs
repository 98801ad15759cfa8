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

    [Fact]
    public void Cruns_json_lines_with_msg_first_read_the_same()
    {
        // crun 1.8.1 --log-format json, as written for `crun state` and `crun kill` of a missing container
        var log = """
            {"msg":"error opening file `/run/containerd/runc/ns/c1/status`: No such file or directory","level":"error","time":"2026-12-07T03:36:22.216358Z"}
            {"msg":"some warning","level":"warning","time":"2026-12-07T03:36:22.262188Z"}

            """;
        Assert.Equal("error opening file `/run/containerd/runc/ns/c1/status`: No such file or directory", RuncLog.LastErrorIn(Encoding.UTF8.GetBytes(log)));
    }

    [Fact]
    public void Text_format_lines_are_no_json_error()
    {
        // crun's text format (what it writes when --log-format is not json, or when it cannot make the JSON)
        Assert.Null(RuncLog.LastErrorIn("error opening file `/r/c1/status`: No such file or directory\n"u8));
    }

    [Fact]
    public void Only_lines_from_the_given_offset_on_count()
    {
        string path = Path.Combine(Path.GetTempPath(), $"rcs-log-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(path, "{\"level\":\"error\",\"msg\":\"old\",\"time\":\"t\"}\n");
            long before = RuncLog.Size(path);
            Assert.Null(RuncLog.LastError(path, before));
            Assert.Equal("old", RuncLog.LastError(path));
            File.AppendAllText(path, "{\"msg\":\"new\",\"level\":\"error\",\"time\":\"t\"}\n");
            Assert.Equal("new", RuncLog.LastError(path, before));
            // shorter than it was: replaced meanwhile, read as a new log from its start
            File.WriteAllText(path, "{\"level\":\"error\",\"msg\":\"x\"}\n");
            Assert.Equal("x", RuncLog.LastError(path, before));
        }
        finally
        {
            File.Delete(path);
        }
        Assert.Equal(0, RuncLog.Size(path));
    }

    [Theory]
    [InlineData("container does not exist", true)]                                            // runc
    [InlineData("container \"c1\" does not exist", true)]
    [InlineData("container not running", true)]
    [InlineData("process already finished", true)]
    [InlineData("no such process", true)]
    [InlineData("container `c1` does not exist: error opening file `/r/c1/status`: No such file or directory", true)]   // crun 1.22+
    [InlineData("error opening file `/r/c1/status`: No such file or directory", true)]         // crun 1.8
    [InlineData("container `c1` is not running", true)]                                       // crun
    [InlineData("kill container: No such process", true)]                                     // crun
    [InlineData("permission denied", false)]
    [InlineData("exec: \"/x\": stat /x: no such file or directory", false)]
    [InlineData("open `/r/c1/config.json`: No such file or directory", false)]
    public void Runtime_texts_for_gone_containers_map_to_not_found(string message, bool notFound)
    {
        Assert.Equal(notFound, new RuncException("/usr/bin/runc", "kill", 1, message).IsNotFound);
        Assert.Equal(notFound, new RuncException("/usr/bin/crun", "delete", 1, message).IsNotFound);
    }

    [Theory]
    [InlineData("create", "the rootfs path `/x` does not exist")]                                // crun
    [InlineData("create", "systemd not running on this host, cannot use systemd as cgroup manager")]
    [InlineData("restore", "container does not exist")]
    [InlineData("features", "unknown command features")]
    public void A_new_containers_missing_path_is_no_gone_container(string verb, string message)
    {
        Assert.False(new RuncException("/usr/bin/crun", verb, 1, message).IsNotFound);
    }

    [Theory]
    [InlineData("/usr/sbin/runc", "create", "runc create failed: unexpected EOF", "runc create failed: unexpected EOF")]
    [InlineData("/opt/runc-1.3/runc.amd64", "create", "runc create failed: unexpected EOF", "runc.amd64 create failed: unexpected EOF")]
    [InlineData("/usr/sbin/runc", "exec", "exec failed: unable to start container process", "runc exec failed: unable to start container process")]
    [InlineData("/usr/bin/crun", "create", "the rootfs path `/x` does not exist", "crun create failed: the rootfs path `/x` does not exist")]
    [InlineData("/usr/bin/crun", "kill", "kill container: No such process", "crun kill failed: kill container: No such process")]
    public void The_message_names_the_binary_that_failed_and_says_its_verb_once(string binary, string verb, string text, string message)
    {
        var ex = new RuncException(binary, verb, 1, text);
        Assert.Equal(message, ex.Message);
        Assert.Equal(text, ex.RuncMessage);
        Assert.Equal(binary, ex.Binary);
    }
}
