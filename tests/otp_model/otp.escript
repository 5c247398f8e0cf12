#!/usr/bin/env escript
%% Runs supervisor cases against Erlang/OTP's own supervisor, for the differential test
%% of the reference model (tests/otp_erlang.rs).
%%
%% Reads a file of cases, one Erlang term each:
%%   {Strategy, Intensity, AutoShutdown, [{Id, Restart, Significant}], [Op]}
%% with Op one of {crash, Id}, {exit, Id}, {terminate, Id}, {restart, Id}, {delete, Id},
%% {start, Id, Restart, Significant}, {fail, Id, N}, shutdown. Children are gen_servers
%% of this module; `{fail, Id, N}` makes the next N starts of Id return an error.
%%
%% Prints, per case, `case` then one line per step, after the supervisor has settled
%% (no child `restarting`): `step <reply> <seen>`, where seen is `ended` or the children
%% in start order as `id:1` (running) / `id:0`.
-module(otp).
-mode(compile).
-export([main/1, start_child/1, init/1, handle_call/3, handle_cast/2, handle_info/2]).

main([File]) ->
    logger:set_primary_config(level, none),
    process_flag(trap_exit, true),
    ets:new(?MODULE, [named_table, public]),
    {ok, Cases} = file:consult(File),
    lists:foreach(fun run_case/1, Cases).

run_case({Strategy, Intensity, Auto, Children, Ops}) ->
    io:format("case~n"),
    ets:delete_all_objects(?MODULE),
    Flags = #{strategy => Strategy, intensity => Intensity, period => 3600,
              auto_shutdown => Auto},
    Specs = [spec(Id, R, S) || {Id, R, S} <- Children],
    {ok, Sup} = supervisor:start_link(?MODULE, {supervisor, Flags, Specs}),
    step(Sup, "start", settle(Sup)),
    run_ops(Sup, Ops).

run_ops(Sup, []) ->
    stop_sup(Sup);
run_ops(Sup, [Op | Rest]) ->
    Reply = apply_op(Sup, Op),
    Seen = settle(Sup),
    step(Sup, Reply, Seen),
    case Seen of
        ended -> ok;
        _ -> run_ops(Sup, Rest)
    end.

step(_Sup, Reply, Seen) ->
    io:format("step ~s ~s~n", [Reply, seen(Seen)]).

seen(ended) -> "ended";
seen(Kids) -> string:join([atom_to_list(Id) ++ ":" ++ running(P) || {Id, P} <- Kids], ",").

running(P) when is_pid(P) -> "1";
running(_) -> "0".

spec(Id, Restart, Significant) ->
    #{id => Id, start => {?MODULE, start_child, [Id]}, restart => Restart,
      significant => Significant, shutdown => 1000, type => worker}.

%% Children in start order, once none is being restarted; `ended` if the supervisor
%% is gone.
settle(Sup) ->
    case catch supervisor:which_children(Sup) of
        {'EXIT', _} ->
            flush_exit(Sup), ended;
        Kids ->
            case lists:any(fun({_, P, _, _}) -> P =:= restarting end, Kids) of
                true -> timer:sleep(1), settle(Sup);
                false -> [{Id, P} || {Id, P, _, _} <- lists:reverse(Kids)]
            end
    end.

%% Stops the supervisor (if it runs) and waits until it is gone.
stop_sup(Sup) ->
    Ref = monitor(process, Sup),
    unlink(Sup),
    exit(Sup, shutdown),
    receive {'DOWN', Ref, _, _, _} -> ok end,
    flush_exit(Sup).

%% The supervisor's exit message, if it came (it is linked; this process traps exits).
flush_exit(Sup) ->
    receive {'EXIT', Sup, _} -> ok after 0 -> ok end.

pid_of(Sup, Id) ->
    case lists:keyfind(Id, 1, supervisor:which_children(Sup)) of
        {Id, P, _, _} when is_pid(P) -> P;
        _ -> undefined
    end.

%% Stops child Id (a crash, or a normal exit) and waits until it is gone.
stop_child(Sup, Id, Reason) ->
    case pid_of(Sup, Id) of
        undefined -> "ok";
        P ->
            Ref = monitor(process, P),
            gen_server:cast(P, {stop, Reason}),
            receive {'DOWN', Ref, _, _, _} -> ok end,
            %% The supervisor has the EXIT before it answers this call.
            catch sys:get_state(Sup),
            "ok"
    end.

apply_op(Sup, {crash, Id}) -> stop_child(Sup, Id, crash);
apply_op(Sup, {exit, Id}) -> stop_child(Sup, Id, normal);
apply_op(_Sup, {fail, Id, N}) -> ets:insert(?MODULE, {Id, N}), "ok";
apply_op(Sup, {terminate, Id}) -> reply(supervisor:terminate_child(Sup, Id));
apply_op(Sup, {restart, Id}) -> reply(supervisor:restart_child(Sup, Id));
apply_op(Sup, {delete, Id}) ->
    case supervisor:delete_child(Sup, Id) of
        {error, running} -> "still_running";
        R -> reply(R)
    end;
apply_op(Sup, {start, Id, Restart, Significant}) ->
    reply(supervisor:start_child(Sup, spec(Id, Restart, Significant)));
apply_op(Sup, shutdown) ->
    stop_sup(Sup), "ok".

reply(ok) -> "ok";
reply({ok, _}) -> "ok";
reply({error, not_found}) -> "no_such_child";
reply({error, running}) -> "running";
reply({error, restarting}) -> "restarting";
reply({error, already_present}) -> "already_exists";
reply({error, {already_started, _}}) -> "already_exists";
reply({error, {planned, _}}) -> "start_failed";
reply({error, planned}) -> "start_failed";
reply({error, _}) -> "invalid_spec".

%% A child's start: fails while its planned failures last.
start_child(Id) ->
    case ets:lookup(?MODULE, Id) of
        [{Id, N}] when N > 0 ->
            ets:insert(?MODULE, {Id, N - 1}),
            {error, planned};
        _ ->
            gen_server:start_link(?MODULE, child, [])
    end.

init({supervisor, Flags, Specs}) -> {ok, {Flags, Specs}};
init(child) -> {ok, child}.

handle_call(_, _, S) -> {reply, ok, S}.
handle_cast({stop, Reason}, S) -> {stop, Reason, S}.
handle_info(_, S) -> {noreply, S}.
