"""Chroma server mode, for real: a ``chroma run`` subprocess holds the index. Ingest into it matches the embedded
index chunk for chunk, answers are identical to the embedded index's, and two web app processes sharing the
server see each other's uploads and deletions."""
from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
from chroma_helpers import start_apps_on, start_chroma, stop_chroma
from conftest import SEED_KNOWLEDGE
from gradio_client import Client
from webapp_helpers import staff_client, stop_app

from bot.answer.assistant import Assistant
from bot.search.ingest import ingest
from bot.config import ROOT
from bot.search.index import REVISION_CHECK_SECONDS, KnowledgeIndex
from bot.knowledge.articles import KnowledgeLoad, load_knowledge, parse_article
from bot.interfaces.library import KnowledgeLibrary

pytestmark = pytest.mark.slow

# Answerable and unanswerable questions from every topic, Traditional and English wording, and follow-ups
# (one answerable, one to refuse).
QUESTION_IDS = ["dental-01", "dibao-02", "city-02", "env-01", "finance-02", "photo-07", "traditional-05",
                "english-04", "followup-01", "followup-06", "none-01", "none-03", "none-19"]
PROPAGATION_SECONDS = 10  # the other process re-checks the collection revision every REVISION_CHECK_SECONDS

DIBAO_QUESTION = "卫东区目前低保保障对象一共有多少户、多少人？"
POOL_ARTICLE = "wd-server-pool-hours"
POOL_MD = f"""---
id: {POOL_ARTICLE}
title: 卫东区全民健身中心游泳馆延长开放时间
date: 2018-11-20
---

2018年11月起,卫东区全民健身中心游泳馆每天晚上开放到21点30分,全年接待游泳市民4.6万人次。
"""
POOL_QUESTION = "卫东区全民健身中心游泳馆晚上开放到几点？"
MARKET_ARTICLE = "wd-server-night-market"
MARKET_MD = f"""---
id: {MARKET_ARTICLE}
title: 卫东区开放建设路夜市
date: 2018-06-01
---

2018年6月起,卫东区建设路夜市每天18点到23点开放,设摊位120个。
"""


def eval_questions() -> list[dict]:
    by_id = {q["id"]: q for q in map(json.loads, (ROOT / "eval" / "questions.jsonl").read_text("utf-8").splitlines())}
    return [by_id[qid] for qid in QUESTION_IDS]


def signature(answer: dict) -> dict:
    """What must not depend on where the index lives: the text, the verdict and every citation's position."""
    return {"text": answer["text"], "refused": answer["refused"], "notice": answer["notice"],
            "condensed_query": answer["condensed_query"],
            "citations": [(c["n"], c["article_id"], c["chunk_id"], c["passage_start"], c["passage_end"],
                           c["sentence_start"], c["sentence_end"]) for c in answer["citations"]]}


def cited(answer: dict) -> set[str]:
    return {c["article_id"] for c in answer["citations"]}


def wait_for(condition, seconds: float = PROPAGATION_SECONDS) -> float | None:
    """Seconds until ``condition()`` held, or None if it never did within ``seconds``."""
    started = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - started
        if time.monotonic() - started > seconds:
            return None
        time.sleep(0.3)


@pytest.fixture(scope="module")
def chroma(tmp_path_factory):
    base = tmp_path_factory.mktemp("chroma-server")
    server = start_chroma(base / "db", base / "chroma.log")
    yield server
    stop_chroma(server)


@pytest.fixture(scope="module")
def knowledge(tmp_path_factory):
    """One knowledge folder for every client of the server, as one deployment would have."""
    folder = tmp_path_factory.mktemp("server-knowledge") / "knowledge"
    shutil.copytree(SEED_KNOWLEDGE, folder)
    return folder


@pytest.fixture(scope="module")
def server_settings(seed_settings, chroma, knowledge, tmp_path_factory):
    base = tmp_path_factory.mktemp("server-client")
    return chroma.settings(seed_settings).with_(knowledge_dir=knowledge, index_dir=base / "index",
                                                data_dir=base / "data")


@pytest.fixture(scope="module")
def server_ingest(server_settings):
    """``bot.search.ingest.ingest`` against the server: (index, summary, errors)."""
    return ingest(server_settings, progress=False)


@pytest.fixture(scope="module")
def server_index(server_ingest) -> KnowledgeIndex:
    return server_ingest[0]


def holds_only_the_keyword_table(index_dir) -> bool:
    """The vectors are on the server; a client's index dir holds only its host's copy of the keyword table."""
    return [p.name for p in index_dir.iterdir()] == ["keyword"]


def test_ingest_into_the_server_matches_the_embedded_index(server_settings, server_ingest, seed_index):
    index, summary, errors = server_ingest
    assert errors == []
    assert (summary.added, summary.removed) == (seed_index.count(), 0)
    assert index.location == f"Chroma server {server_settings.chroma_host}:{server_settings.chroma_port}"
    assert holds_only_the_keyword_table(server_settings.index_dir)

    include = ["documents", "metadatas", "embeddings"]
    remote = index.collection.get(include=include)
    local = seed_index.collection.get(include=include)
    order_remote, order_local = np.argsort(remote["ids"]), np.argsort(local["ids"])
    assert [remote["ids"][i] for i in order_remote] == [local["ids"][i] for i in order_local]
    assert [remote["documents"][i] for i in order_remote] == [local["documents"][i] for i in order_local]
    assert [remote["metadatas"][i] for i in order_remote] == [local["metadatas"][i] for i in order_local]
    assert np.allclose(np.asarray(remote["embeddings"])[order_remote], np.asarray(local["embeddings"])[order_local])

    _, again, _ = ingest(server_settings, progress=False)
    assert (again.added, again.removed, again.unchanged) == (0, 0, seed_index.count())


@pytest.mark.parametrize("question", eval_questions(), ids=QUESTION_IDS)
def test_answers_from_the_server_equal_the_embedded_ones(server_settings, server_index, assistant, question):
    server_assistant = Assistant(server_settings, index=server_index)
    history = question.get("history")
    expected = assistant.ask(question["question"], history).to_dict()
    got = server_assistant.ask(question["question"], history).to_dict()
    assert signature(got) == signature(expected)


def test_a_change_through_one_client_reaches_another(server_settings, server_index):
    """The revision check works over HTTP: a second client (as in another process) picks up an added and then
    a removed article without being told."""
    reader = KnowledgeIndex(server_settings, server_index.embeddings)  # its own HTTP client
    reader.refresh(force=True)
    before = reader.revision()
    seed = load_knowledge(server_settings.knowledge_dir)
    extra = parse_article(POOL_MD, "uploads/pool.md")
    try:
        added = server_index.sync(KnowledgeLoad(articles=[*seed.articles, extra]), progress=False)
        assert added.added >= 1
        after_add = reader.revision()
        assert after_add != before
        new_ids = {c.id for c in server_index.chunks() if c.article_id == POOL_ARTICLE}
        assert wait_for(lambda: all(reader.chunk(cid) for cid in new_ids)) is not None

        removed = server_index.sync(seed, progress=False)
        assert removed.removed == added.added
        assert reader.revision() != after_add
        assert wait_for(lambda: not any(reader.chunk(cid) for cid in new_ids)) is not None
        assert sorted(c.id for c in reader.chunks()) == sorted(c.id for c in server_index.chunks())
    finally:
        server_index.sync(seed, progress=False)  # the later tests share this collection: leave only the seed


@pytest.fixture(scope="module")
def apps(chroma, server_settings, server_index, tmp_path_factory):
    """Two app.py processes on one server: own ports and data folders, one shared knowledge folder."""
    base = tmp_path_factory.mktemp("server-apps")
    configs = [(server_settings.with_(index_dir=base / f"index-{n}", data_dir=base / f"data-{n}"),
                base / f"app-{n}.log") for n in (1, 2)]
    running = start_apps_on(chroma, configs)
    yield running
    for app in running:
        stop_app(app)


@pytest.fixture(scope="module")
def clients(apps) -> list[Client]:
    return [Client(app.url, verbose=False) for app in apps]


def ask(client: Client, question: str) -> dict:
    return client.predict(question, [], api_name="/ask")


def test_both_apps_answer_from_the_shared_index(apps, clients, chroma, assistant, server_index):
    expected = signature(assistant.ask(DIBAO_QUESTION).to_dict())
    for app, client in zip(apps, clients):
        assert f"index Chroma server {chroma.host}:{chroma.port}: {server_index.count()} chunks" in app.log()
        assert holds_only_the_keyword_table(app.settings.index_dir)
        answer = ask(client, DIBAO_QUESTION)
        assert "3622" in answer["text"]
        assert signature(answer) == expected


def test_upload_through_one_app_then_delete_through_the_other(apps, clients, server_index, tmp_path):
    first, second = clients
    first_staff, second_staff = (staff_client(app) for app in apps)
    for client in clients:
        assert POOL_ARTICLE not in cited(ask(client, POOL_QUESTION))

    upload = tmp_path / "游泳馆.md"
    upload.write_text(POOL_MD, encoding="utf-8")
    status = first_staff.predict(upload.name, upload.read_text(encoding="utf-8"), False, False, api_name="/staff_upload")
    assert "已添加 1 篇文章" in status
    assert (apps[0].settings.knowledge_dir / "uploads" / upload.name).is_file()
    answer = ask(first, POOL_QUESTION)
    assert POOL_ARTICLE in cited(answer) and "21点30分" in answer["text"]
    seen_after = wait_for(lambda: POOL_ARTICLE in cited(ask(second, POOL_QUESTION)))
    assert seen_after is not None, f"the second app did not answer from the upload within {PROPAGATION_SECONDS} s"
    assert "21点30分" in ask(second, POOL_QUESTION)["text"]
    assert POOL_ARTICLE in [row[0] for row in second_staff.predict("游泳馆", api_name="/staff_articles")]

    status = second_staff.predict(POOL_ARTICLE, api_name="/staff_delete")
    assert "已删除 1 篇文章" in status
    assert server_index.collection.get(where={"article_id": POOL_ARTICLE}, include=[])["ids"] == []
    assert POOL_ARTICLE not in cited(ask(second, POOL_QUESTION))
    gone_after = wait_for(lambda: POOL_ARTICLE not in cited(ask(first, POOL_QUESTION)))
    assert gone_after is not None, f"the first app still cited the deleted article after {PROPAGATION_SECONDS} s"
    print(f"\nacross apps: upload answerable after {seen_after:.1f} s, deletion gone after {gone_after:.1f} s")
    # Never again, also after both apps' next revision checks.
    deadline = time.monotonic() + 2 * REVISION_CHECK_SECONDS + 0.5
    while time.monotonic() < deadline:
        for client in clients:
            assert POOL_ARTICLE not in cited(ask(client, POOL_QUESTION))
    for staff in (first_staff, second_staff):
        rows = staff.predict("", api_name="/staff_articles")
        assert POOL_ARTICLE not in [row[0] for row in rows]


def test_uploads_through_processes_with_their_own_folders_coexist(server_settings, server_index, tmp_path):
    """Where each process keeps its own knowledge folder (an upload's file then exists only where it was
    uploaded), an upload through one process must not remove what another one uploaded to the shared index."""
    libraries = []
    for name in ("first", "second"):
        settings = server_settings.with_(knowledge_dir=tmp_path / name)
        shutil.copytree(SEED_KNOWLEDGE, settings.knowledge_dir)
        libraries.append(KnowledgeLibrary(settings, KnowledgeIndex(settings, server_index.embeddings)))
    first, second = libraries
    try:
        first.add_file("pool.md", POOL_MD.encode())
        change = second.add_file("market.md", MARKET_MD.encode())
        indexed = {article: bool(server_index.collection.get(where={"article_id": article}, include=[])["ids"])
                   for article in (POOL_ARTICLE, MARKET_ARTICLE)}
        assert indexed == {POOL_ARTICLE: True, MARKET_ARTICLE: True}, f"after the second upload: {change.message()}"
    finally:
        for article in (POOL_ARTICLE, MARKET_ARTICLE):
            server_index.delete_article(article)
