// The interactive page of a drawing (autograd/view/page.py writes the data; this only shows it).
// Every text comes from the page's JSON data and is written with textContent, never as markup.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("page-data").textContent);
  var drawing = document.getElementById("drawing");
  var info = document.getElementById("info");
  var detail = document.getElementById("detail");
  var slider = document.getElementById("slider");
  var caption = document.getElementById("caption");
  var search = document.getElementById("search");
  var found = document.getElementById("found");
  var closer = document.getElementById("close");
  var zoom = document.getElementById("zoom");
  var SVG_NS = "http://www.w3.org/2000/svg";

  var current = null; // the view shown: {data, units: id -> element, edges: [element], natural: [w, h]}

  function make(tag, className, text) {
    var element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined && text !== null) element.textContent = text;
    return element;
  }

  function clear(element) {
    while (element.firstChild) element.removeChild(element.firstChild);
  }

  // Graphviz's SVG, parsed as XML; anything that could run or fetch is dropped (there should be none).
  function parseSvg(text) {
    var parsed = new DOMParser().parseFromString(text, "image/svg+xml");
    var svg = parsed.documentElement;
    if (svg.nodeName !== "svg") throw new Error("the drawing's SVG could not be read");
    var all = svg.getElementsByTagName("*");
    for (var i = all.length - 1; i >= 0; i--) {
      var element = all[i];
      var name = element.localName.toLowerCase();
      if (name === "script" || name === "foreignobject" || name === "use" || name === "image") {
        element.parentNode.removeChild(element);
        continue;
      }
      for (var j = element.attributes.length - 1; j >= 0; j--) {
        var attribute = element.attributes[j].name.toLowerCase();
        if (attribute.indexOf("on") === 0 || attribute === "href" || attribute === "xlink:href") {
          element.removeAttribute(element.attributes[j].name);
        }
      }
    }
    return document.importNode(svg, true);
  }

  function titleOf(group) {
    var title = group.getElementsByTagName("title")[0];
    return title ? title.textContent : "";
  }

  function showView(index) {
    var view = data.views[index];
    var svg = parseSvg(view.svg);
    var natural = [parseFloat(svg.getAttribute("width")) * 4 / 3, parseFloat(svg.getAttribute("height")) * 4 / 3];
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    svg.setAttribute("preserveAspectRatio", "xMidYMin meet");
    clear(drawing);
    drawing.appendChild(svg);
    current = {index: index, data: view, svg: svg, units: {}, edges: [], natural: natural};
    var groups = svg.getElementsByTagName("g");
    var pairs = {};
    view.edges.forEach(function (edge, k) {
      var key = edge[0] + "->" + edge[1];
      (pairs[key] = pairs[key] || []).push(k);
    });
    var seen = {};
    for (var i = 0; i < groups.length; i++) {
      var group = groups[i];
      var kind = group.getAttribute("class");
      var title = titleOf(group);
      if (kind === "node" && view.units[title]) {
        group.setAttribute("data-unit", title);
        current.units[title] = group;
      } else if (kind === "edge" && pairs[title]) {
        var k = seen[title] || 0;
        seen[title] = k + 1;
        if (k < pairs[title].length) {
          group.setAttribute("data-edge", String(pairs[title][k]));
          current.edges[pairs[title][k]] = group;
        }
      }
    }
    // the titles told the shapes apart; left in, a browser would show them ("n12", "%3") as tooltips
    var titles = svg.getElementsByTagName("title");
    for (var t = titles.length - 1; t >= 0; t--) titles[t].parentNode.removeChild(titles[t]);
    closer.hidden = !view.opened;
    closer.textContent = view.opened ? "close " + view.opened : "";
    var stepping = document.getElementById("stepping");
    stepping.hidden = view.steps.length === 0;
    slider.max = String(view.steps.length);
    slider.value = String(view.steps.length);
    clear(detail);
    setStep(view.steps.length);
    fit(zoom.getAttribute("data-mode") || "width");
    if (search.value) find(search.value);
  }

  // Zoom: "width" fits the drawing to the window's width (a tall one scrolls), "whole" fits all of it in the
  // window, "natural" is its own size; the button names the next.
  var ZOOMS = {width: ["whole", "fit the whole drawing"], whole: ["natural", "1:1"], natural: ["width", "fit the width"]};

  function fit(mode) {
    var style = current.svg.style;
    var width = current.natural[0];
    zoom.setAttribute("data-mode", mode);
    zoom.textContent = ZOOMS[mode][1];
    if (mode === "width") {  // the height written out: not every browser sizes an inline SVG by its viewBox
      var fitted = Math.min(drawing.clientWidth - 4, width * 1.5);
      style.width = fitted + "px";
      style.height = fitted * current.natural[1] / current.natural[0] + "px";
    } else if (mode === "whole") {
      style.width = "100%";
      style.height = "100%";
    } else {
      style.width = width + "px";
      style.height = current.natural[1] + "px";
    }
  }

  // --- stepping through the reverse pass ---
  function setStep(step) {
    var view = current.data;
    var steps = view.steps;
    var whole = step >= steps.length;
    if (steps.length === 0) return;
    caption.textContent = whole ? "the whole reverse pass (" + (steps.length - 1) + " steps): drag the slider " +
      "or press \u2190 \u2192 to step through it" : steps[step][0];
    view.edges.forEach(function (edge, k) {
      var element = current.edges[k];
      if (!element) return;
      var sent = edge[3];
      var fresh = !whole && sent.indexOf(step) >= 0;
      var pending = !whole && !fresh && sent.length > 0 && sent[sent.length - 1] > step;
      element.classList.toggle("fresh", fresh);
      element.classList.toggle("pending", pending);
    });
    Object.keys(current.units).forEach(function (id) {
      var unit = view.units[id];
      var element = current.units[id];
      element.classList.toggle("current", !whole && steps[step][1] === id);
      element.classList.toggle("unfinished", !whole && unit.done !== undefined && unit.done > step);
    });
    if (!whole && steps[step][1] && current.units[steps[step][1]]) {
      reveal(current.units[steps[step][1]]);
    }
  }

  function moveStep(by) {
    var step = Math.max(0, Math.min(Number(slider.max), Number(slider.value) + by));
    slider.value = String(step);
    setStep(step);
  }

  function reveal(element) {
    if (zoom.getAttribute("data-mode") === "whole") return;
    var box = element.getBoundingClientRect();
    var frame = drawing.getBoundingClientRect();
    if (box.left < frame.left || box.right > frame.right || box.top < frame.top || box.bottom > frame.bottom) {
      drawing.scrollLeft += box.left - frame.left - frame.width / 2 + box.width / 2;
      drawing.scrollTop += box.top - frame.top - frame.height / 2 + box.height / 2;
    }
  }

  function centre(element) {
    var box = element.getBoundingClientRect();
    var frame = drawing.getBoundingClientRect();
    drawing.scrollTop += box.top - frame.top - frame.height / 3;
    drawing.scrollLeft += box.left - frame.left - frame.width / 2 + box.width / 2;
  }

  // --- the panel ---
  function array(parent, label, shown) {
    if (!shown) return;
    var head = make("div", "array-head");
    head.appendChild(make("span", "label", label));
    head.appendChild(make("span", "shape", shown.shape + " \u00b7 " + shown.dtype));
    parent.appendChild(head);
    parent.appendChild(make("pre", "array", shown.text));
    if (shown.note) parent.appendChild(make("p", "note", shown.note));
  }

  function nodeHeading(parent, node) {
    parent.appendChild(make("h2", "name", node.name));
    if (node.expr) parent.appendChild(make("p", "expr", node.name + " = " + node.expr));
    parent.appendChild(make("p", "stage", node.stage.length ? "stage " + node.stage.join(" / ") : "outside any stage"));
  }

  function showUnit(id) {
    var unit = current.data.units[id];
    clear(info);
    if (unit.box !== undefined) {
      info.appendChild(make("h2", "name", unit.box));
      info.appendChild(make("p", "stage", "a box: " + unit.size + " nodes" +
        (unit.repeats > 1 ? " in each of " + unit.repeats + " stages" : "") + " inside stage " + unit.path.join(" / ")));
      info.appendChild(make("p", "hint", unit.open !== null ? "click to open it in place" : unit.closed));
      return;
    }
    if (unit.shared !== undefined) {
      info.appendChild(make("h2", "name", "inputs shared by several stages"));
      info.appendChild(make("p", "hint", "each stage that uses one shows its share; here are their totals"));
      unit.shared.forEach(function (n) {
        var section = make("section", "link");
        nodeHeading(section, data.nodes[n]);
        array(section, "value", data.nodes[n].value);
        array(section, "d" + data.root + "/d" + data.nodes[n].name, data.nodes[n].grad);
        info.appendChild(section);
      });
      return;
    }
    var node = data.nodes[unit.node];
    nodeHeading(info, node);
    if (unit.copy !== undefined) {
      info.appendChild(make("p", "note", "a copy of " + node.name + " drawn in " + unit.copy));
      array(info, "what this stage adds to d" + data.root + "/d" + node.name, unit.adds);
    }
    array(info, "value", node.value);
    array(info, "d" + data.root + "/d" + node.name, node.grad);
    if (node.branches) info.appendChild(make("p", "hint", "a fork: click it to see its branches and their sum"));
  }

  function showEdge(k) {
    var edge = current.data.edges[k];
    clear(info);
    var links = edge[2];
    info.appendChild(make("h2", "name", links.length === 1 ?
      data.nodes[data.links[links[0]].input].name + " \u2192 " + data.nodes[data.links[links[0]].consumer].name :
      links.length + " edges"));
    links.slice(0, 12).forEach(function (j) {
      var link = data.links[j];
      var section = make("section", "link");
      if (links.length > 1) {
        section.appendChild(make("h3", "", data.nodes[link.input].name + " \u2192 " + data.nodes[link.consumer].name));
      }
      if (link.formula) section.appendChild(make("p", "formula", link.formula));
      array(section, "local derivative", link.local);
      if (link.rule) section.appendChild(make("p", "rule", link.rule));
      array(section, "term sent back to " + data.nodes[link.input].name, link.term);
      info.appendChild(section);
    });
    if (links.length > 12) info.appendChild(make("p", "note", (links.length - 12) + " more edges"));
  }

  function mark(className, elements) {
    var old = drawing.querySelectorAll("." + className);
    for (var i = 0; i < old.length; i++) old[i].classList.remove(className);
    elements.forEach(function (element) { if (element) element.classList.add(className); });
  }

  function pin(id) {
    var unit = current.data.units[id];
    if (unit.box !== undefined) {
      if (unit.open !== null) {
        var path = unit.path.join("\u0000");
        showView(unit.open);
        // in place: the opened stage where the box was
        var inside = Object.keys(current.units).filter(function (key) {
          var shown = current.data.units[key];
          return shown.node !== undefined &&
            data.nodes[shown.node].stage.slice(0, unit.path.length).join("\u0000") === path;
        });
        if (inside.length) centre(current.units[inside[0]]);
      }
      return;
    }
    if (unit.node === undefined) return;
    var node = data.nodes[unit.node];
    clear(detail);
    mark("pinned", [current.units[id]]);
    var branchEdges = [];
    if (node.branches) {
      detail.appendChild(make("h2", "", "fork: " + node.branches.length + " branches add up"));
      current.data.edges.forEach(function (edge, k) {
        if (edge[2].some(function (j) { return node.branches.indexOf(j) >= 0; })) branchEdges.push(current.edges[k]);
      });
      var list = make("ol", "branches");
      node.branches.forEach(function (j) {
        var link = data.links[j];
        var item = make("li");
        item.appendChild(make("span", "label", "from " + data.nodes[link.consumer].name + ": "));
        item.appendChild(make("pre", "array", link.term ? link.term.text : ""));
        list.appendChild(item);
      });
      detail.appendChild(list);
      if (node.sum) detail.appendChild(make("p", "sum", node.sum));
      else array(detail, "their sum, d" + data.root + "/d" + node.name, node.grad);
    }
    mark("branch", branchEdges);
    if (node.explain) {
      detail.appendChild(make("h2", "", "explain: " + node.name));
      detail.appendChild(make("pre", "explain", node.explain.join("\n")));
    } else if (!node.branches) {
      detail.appendChild(make("p", "hint", node.name + ": no gradient is derived for it"));
    }
  }

  // --- search ---
  function find(query) {
    var wanted = query.trim().toLowerCase();
    var hits = [];
    if (wanted) {
      Object.keys(current.units).forEach(function (id) {
        var unit = current.data.units[id];
        var names = [];
        var stages = [];
        if (unit.shared !== undefined) {
          unit.shared.forEach(function (n) { names.push(data.nodes[n].name); });
        } else if (unit.box !== undefined) {
          names.push(unit.box);
          stages = unit.path.slice();
          (unit.members || []).forEach(function (n) {  // a box holds the stages of the nodes inside it
            names.push(data.nodes[n].name);
            stages = stages.concat(data.nodes[n].stage);
          });
        } else {
          names.push(data.nodes[unit.node].name);
          stages = data.nodes[unit.node].stage;
          (unit.members || []).forEach(function (n) { names.push(data.nodes[n].name); });
        }
        var match = names.concat(stages).some(function (name) { return name.toLowerCase().indexOf(wanted) >= 0; });
        if (match) hits.push(id);
      });
    }
    mark("found", hits.map(function (id) { return current.units[id]; }));
    found.textContent = wanted ? (hits.length ? hits.length + " found" : "none found") : "";
    if (hits.length) {
      showUnit(hits[0]);
      reveal(current.units[hits[0]]);
    }
    return hits;
  }

  // --- events ---
  drawing.addEventListener("mouseover", function (event) {
    var target = event.target.closest ? event.target.closest("[data-unit],[data-edge]") : null;
    if (!target) return;
    if (target.hasAttribute("data-unit")) showUnit(target.getAttribute("data-unit"));
    else showEdge(Number(target.getAttribute("data-edge")));
  });
  drawing.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target.closest("[data-unit]") : null;
    if (target) pin(target.getAttribute("data-unit"));
  });
  slider.addEventListener("input", function () { setStep(Number(slider.value)); });
  document.addEventListener("keydown", function (event) {
    if (event.target === search) return;
    if (event.key === "ArrowRight" || event.key === "ArrowDown") moveStep(1);
    else if (event.key === "ArrowLeft" || event.key === "ArrowUp") moveStep(-1);
    else if (event.key === "Home") moveStep(-Infinity);
    else if (event.key === "End") moveStep(Infinity);
    else return;
    event.preventDefault();
  });
  search.addEventListener("input", function () { find(search.value); });
  closer.addEventListener("click", function () {
    var opened = current.index;
    showView(0);
    Object.keys(current.units).forEach(function (key) {  // back in place: the box where the stage was
      if (current.data.units[key].open === opened) centre(current.units[key]);
    });
  });
  zoom.addEventListener("click", function () { fit(ZOOMS[zoom.getAttribute("data-mode")][0]); });
  window.addEventListener("resize", function () { fit(zoom.getAttribute("data-mode")); });

  showView(0);
  // ready to use: the milliseconds since the page was asked for (load to interactive)
  document.body.setAttribute("data-ready", String(performance.now()));
})();
